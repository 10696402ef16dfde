// End to end: the browser example on CIFAR-100. Builds examples/browser with Vite, serves it with
// `vite preview`, picks a cifar-100-binary.tar.gz of synthetic files in the official format and
// trains on its coarse labels on wasm in headless Chromium.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COARSE_NAMES, FINE_NAMES, nameFile, syntheticCifar100 } from '../helpers/cifar100.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
/** Tiny: one epoch of 4 steps on wasm. A local subset (fewer records than the official files) is accepted by the page. */
/** What the prediction grid shows for a coarse label: its name from coarse_label_names.txt. */
const COARSE_NAMES_PATTERN = /^coarse_\d+$/;
const RUN = { train: 64, eval: 32, depth: 4, batch: 16, micro: 16, epochs: 1, seed: 1 };

const reason = existsSync(CHROMIUM) ? null : `Chromium not found at ${CHROMIUM} (Debian: apt-get install chromium; or set CHROMIUM_PATH)`;
const suite = reason ? describe.skip : describe;

suite(`browser example on CIFAR-100 in headless Chromium${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let work: string;
  let server: PreviewServer;
  let browser: Browser;

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'tfjs-dataflow-e2e-c100-'));
    const data = path.join(work, 'cifar-100-binary');
    mkdirSync(data);
    writeFileSync(path.join(data, 'train.bin'), syntheticCifar100(RUN.train, 0));
    writeFileSync(path.join(data, 'test.bin'), syntheticCifar100(RUN.eval, 3));
    writeFileSync(path.join(data, 'fine_label_names.txt'), nameFile(FINE_NAMES));
    writeFileSync(path.join(data, 'coarse_label_names.txt'), nameFile(COARSE_NAMES));
    execFileSync('tar', ['-czf', path.join(work, 'cifar-100-binary.tar.gz'), '-C', work, 'cifar-100-binary']);
    const { build, preview } = await import('vite');
    const configFile = path.join(REPO, 'examples/browser/vite.config.ts');
    const outDir = path.join(work, 'dist');
    await build({ configFile, logLevel: 'warn', build: { outDir, emptyOutDir: true } });
    server = await preview({ configFile, logLevel: 'warn', build: { outDir }, preview: { host: '127.0.0.1', port: 0 } });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => (server ? server.httpServer.close(resolve) : resolve(undefined)));
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('recognises a picked cifar-100-binary.tar.gz and trains a 20-class net on its coarse labels', async () => {
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
    await page.goto(`${server.resolvedUrls!.local[0]!}?backend=wasm`);
    // The labels choice is CIFAR-100's: hidden until CIFAR-100 is picked.
    await page.waitForFunction(() => window.tfjsDataflowDemo?.state === 'idle');
    expect(await page.isVisible('#labels-field')).toBe(false);
    await page.setInputFiles('#files', path.join(work, 'cifar-100-binary.tar.gz'));
    await page.waitForFunction(() => document.querySelector('#data-status')!.textContent!.startsWith('CIFAR-100 from'), null, {
      timeout: 60_000,
    });
    expect(await page.isVisible('#labels-field')).toBe(true);
    await page.selectOption('select[name="labels"]', 'coarse');
    await page.click('#config summary');
    for (const [field, value] of Object.entries(RUN)) await page.fill(`input[name="${field}"]`, String(value));
    await page.selectOption('#backend', 'wasm');
    await page.click('#start');
    await page.waitForFunction(() => ['done', 'error'].includes(window.tfjsDataflowDemo.state), null, { timeout: 150_000, polling: 250 });
    const demo = await page.evaluate(() => ({
      error: window.tfjsDataflowDemo.error,
      backend: window.tfjsDataflowDemo.backend,
      steps: window.tfjsDataflowDemo.steps.length,
      predictions: window.tfjsDataflowDemo.predictions,
    }));
    expect(demo.error).toBeNull();
    expect(demo.backend).toBe('wasm');
    expect(demo.steps).toBe(RUN.train / RUN.batch);
    expect(demo.predictions).toHaveLength(RUN.eval);
    // Coarse labels of test records 0..31 (fine 3..34): superclasses 0..6; guesses come from 20 outputs.
    expect(demo.predictions.map((p) => p.label)).toEqual(Array.from({ length: RUN.eval }, (_, i) => Math.floor((3 + i) / 5)));
    expect(demo.predictions.every((p) => Number.isInteger(p.predicted) && p.predicted >= 0 && p.predicted < 20)).toBe(true);
    const shown = await page.$$eval('#predictions .label', (cells) => cells.map((c) => c.textContent));
    expect(shown.every((name) => COARSE_NAMES_PATTERN.test(name ?? ''))).toBe(true);
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 240_000);
});
