// End to end: builds examples/browser with Vite, serves it with `vite preview` (CIFAR-10 subset at
// /cifar10/ through the config's CIFAR10_DIR middleware) and trains in headless Chromium on WebGPU.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, readSync, closeSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CIFAR10_CLASSES, CIFAR10_RECORD_BYTES, TABLE_COLUMNS } from '../../src/index.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// $CIFAR10_DIR (as the CLI reads it) where the checkout has no ../shared beside it.
const DATA_DIR = process.env['CIFAR10_DIR'] ?? path.resolve(REPO, '../shared/data/cifar10');
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
// docs/browser.png is refreshed on request (UPDATE_SCREENSHOT=1), so a test run leaves the worktree clean.
const SCREENSHOT = path.join(REPO, process.env['UPDATE_SCREENSHOT'] ? 'docs/browser.png' : '.cache/browser.png');

/** Tiny on purpose: Chromium's software WebGPU (SwiftShader) trains at a few images per second here. */
const RUN = { train: 64, eval: 32, depth: 4, batch: 16, epochs: 2, seed: 1 };
const STEPS = (RUN.train / RUN.batch) * RUN.epochs;
/**
 * More training images than 128 MiB (a browser's default maxStorageBufferBindingSize) holds as padded
 * float32 (134,217,728 / 15,552 = 8,630), for two steps: 0.004 of an epoch of 9,000 at batch 16.
 */
// The whitening fit on 64 of them, as the first run's: the fit on all 9,000 takes most of ten minutes on SwiftShader.
const LARGE = { train: 9000, eval: 32, depth: 4, batch: 16, epochs: 0.004, seed: 1, whiten: 64 };
const BINDING_LIMIT = 128 * 2 ** 20;

/**
 * Flags that give `navigator.gpu` an adapter in headless Chromium without a GPU: WebGPU is behind
 * --enable-unsafe-webgpu on Linux and then runs on SwiftShader. (WebGPU also needs a secure
 * origin, hence http://127.0.0.1, not about:blank or a file:// page.)
 */
const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-unsafe-swiftshader',
  '--disable-gpu-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

function skipReason(): string | null {
  if (!existsSync(CHROMIUM)) return `Chromium not found at ${CHROMIUM} (Debian: apt-get install chromium; or set CHROMIUM_PATH)`;
  for (const f of ['data_batch_1.bin', 'test_batch.bin']) {
    if (!existsSync(path.join(DATA_DIR, f))) return `CIFAR-10 binary files not found in ${DATA_DIR} (need ${f})`;
  }
  return null;
}

/** The first `records` records of a batch file. */
function head(file: string, records: number): Buffer {
  const bytes = Buffer.alloc(records * CIFAR10_RECORD_BYTES);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, bytes, 0, bytes.length, 0);
  } finally {
    closeSync(fd);
  }
  return bytes;
}

interface DemoSnapshot {
  state: string;
  backend: string | null;
  convPrecision: string | null;
  error: string | null;
  steps: Array<{ step: number; loss?: number; epoch: number; imagesPerSec: number }>;
  records: Array<{ epoch: number; valAcc: number; valLoss: number; emaValAcc: number | null }>;
  predictions: Array<{ predicted: number; label: number }>;
  timings: Record<string, number>;
  chartPoints: Record<string, number>;
}

const snapshot = (page: Page) =>
  page.evaluate(() => {
    const d = window.tfjsDataflowDemo;
    return {
      state: d.state,
      backend: d.backend,
      convPrecision: d.convPrecision,
      error: d.error,
      steps: d.steps,
      records: d.records,
      predictions: d.predictions,
      timings: d.timings,
      chartPoints: Object.fromEntries(Object.entries(d.charts).map(([k, c]) => [k, c.data.reduce((n, s) => n + s.length, 0)])),
    };
  }) as Promise<DemoSnapshot>;

/**
 * Records every text the page's status line (#progress) shows, in window.statusLog, from the first paint on:
 * what a person watching the page would have read, stage by stage.
 */
function recordStatusLine(): void {
  const log: string[] = [];
  (window as unknown as { statusLog: string[] }).statusLog = log;
  document.addEventListener('DOMContentLoaded', () => {
    const line = document.getElementById('progress')!;
    log.push(line.textContent ?? '');
    new MutationObserver(() => {
      const text = line.textContent ?? '';
      if (log.at(-1) !== text) log.push(text);
    }).observe(line, { childList: true, characterData: true, subtree: true });
  });
}

const statusLog = (page: Page) => page.evaluate(() => (window as unknown as { statusLog: string[] }).statusLog);

/**
 * As a browser does unless the page asks for more: every device the page gets binds at most `limit` bytes. Records
 * the limits of the devices made in window.bindingLimits.
 */
function limitBindings(limit: number): void {
  const request = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (this: GPUAdapter, descriptor?: GPUDeviceDescriptor) {
    const requiredLimits = { ...(descriptor?.requiredLimits ?? {}) } as Record<string, number>;
    requiredLimits['maxStorageBufferBindingSize'] = Math.min(requiredLimits['maxStorageBufferBindingSize'] ?? limit, limit);
    if (requiredLimits['maxBufferSize'] !== undefined) requiredLimits['maxBufferSize'] = Math.min(requiredLimits['maxBufferSize'], limit);
    const device = await request.call(this, { ...descriptor, requiredLimits });
    const w = window as unknown as { bindingLimits?: number[] };
    w.bindingLimits = [...(w.bindingLimits ?? []), device.limits.maxStorageBufferBindingSize];
    return device;
  };
}
const reason = skipReason();
const suite = reason ? describe.skip : describe;

suite(`browser example in headless Chromium on WebGPU${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let work: string;
  let server: PreviewServer;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'tfjs-dataflow-e2e-'));
    const data = path.join(work, 'cifar10');
    mkdirSync(data);
    writeFileSync(path.join(data, 'data_batch_1.bin'), head(path.join(DATA_DIR, 'data_batch_1.bin'), Math.max(RUN.train, LARGE.train)));
    writeFileSync(path.join(data, 'test_batch.bin'), head(path.join(DATA_DIR, 'test_batch.bin'), RUN.eval));
    // Read by the example's vite.config.ts when build/preview load it.
    process.env['CIFAR10_DIR'] = data;
    const { build, preview } = await import('vite');
    const configFile = path.join(REPO, 'examples/browser/vite.config.ts');
    const outDir = path.join(work, 'dist');
    await build({ configFile, logLevel: 'warn', build: { outDir, emptyOutDir: true } });
    server = await preview({ configFile, logLevel: 'warn', build: { outDir }, preview: { host: '127.0.0.1', port: 0 } });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1200, height: 900 }, acceptDownloads: true });
    page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(`console.error: ${m.text()}`);
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => (server ? server.httpServer.close(resolve) : resolve(undefined)));
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('trains SpeedyConvNet on WebGPU, stops and resumes, and shows charts, the table and predictions', async () => {
    const url = server.resolvedUrls!.local[0]!;
    const query = new URLSearchParams({
      data: '/cifar10/',
      backend: 'webgpu',
      convPrecision: 'float16',
      autostart: '1',
      logEvery: '1',
      ...Object.fromEntries(Object.entries(RUN).map(([k, v]) => [k, String(v)])),
    });
    await page.addInitScript(recordStatusLine);
    await page.addInitScript(limitBindings, BINDING_LIMIT);
    await page.goto(`${url}?${query}`);

    // Stop mid-epoch from the page's own button (the page must stay responsive while training), then resume.
    await page.waitForFunction(() => window.tfjsDataflowDemo.steps.length >= 2 || window.tfjsDataflowDemo.state === 'error', null, {
      timeout: 240_000,
      polling: 250,
    });
    expect((await snapshot(page)).error).toBeNull();
    await page.click('#stop');
    await page.waitForFunction(() => ['stopped', 'error'].includes(window.tfjsDataflowDemo.state), null, {
      timeout: 120_000,
      polling: 250,
    });
    const stopped = await snapshot(page);
    expect(stopped.state).toBe('stopped');
    expect(stopped.steps.length).toBeLessThan(STEPS);
    expect(await page.isEnabled('#resume')).toBe(true);
    await page.click('#resume');
    await page.waitForFunction(() => ['done', 'error'].includes(window.tfjsDataflowDemo.state), null, { timeout: 300_000, polling: 500 });

    const demo = await snapshot(page);
    expect(demo.error).toBeNull();
    expect(demo.state).toBe('done');
    expect(demo.backend).toBe('webgpu');
    expect(await page.textContent('#backend-name')).toBe('webgpu');
    // ?convPrecision=float16 reaches initBackend; SwiftShader has no subgroup matrices, so float32 runs and the page says why.
    expect(demo.convPrecision).toMatch(/^float32 \(float16 requested, but the device lacks \S+\)$|^float16 on subgroup matrices /);
    expect(await page.textContent('#backend-conv-precision')).toBe(`convolutions: ${demo.convPrecision}`);
    // Resuming continued the run: every step exactly once, in order.
    expect(demo.steps.map((s) => s.step)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    expect(demo.records.map((r) => r.epoch)).toEqual([0, 1]);
    const losses = demo.steps.map((s) => s.loss!);
    expect(losses.every(Number.isFinite)).toBe(true);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    // Per-batch losses are noisy at batch 16: compare the two halves of the run.
    expect(mean(losses.slice(STEPS / 2))).toBeLessThan(mean(losses.slice(0, STEPS / 2)));

    // Charts: points in every chart, and coloured pixels on every canvas.
    for (const [name, points] of Object.entries(demo.chartPoints)) expect(points, `points in chart ${name}`).toBeGreaterThan(STEPS - 1);
    const coloured = await page.$$eval('.charts canvas', (canvases) =>
      canvases.map((c) => {
        const { data } = (c as HTMLCanvasElement)
          .getContext('2d')!
          .getImageData(0, 0, (c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height);
        let n = 0;
        for (let i = 0; i < data.length; i += 4)
          if (Math.max(data[i]!, data[i + 1]!, data[i + 2]!) - Math.min(data[i]!, data[i + 1]!, data[i + 2]!) > 60) n++;
        return n;
      }),
    );
    expect(coloured).toHaveLength(4);
    for (const n of coloured) expect(n).toBeGreaterThan(100);

    // The epoch table, as the CLI prints it.
    const table = (await page.textContent('#table'))!;
    for (const column of TABLE_COLUMNS) expect(table).toContain(column);
    expect(
      table.split('\n').filter((l) => /^\|\s*\d+\s*\|/.test(l)),
      table,
    ).toHaveLength(2);

    // The prediction grid: one cell per test image (up to 32), drawn, with class names.
    const cells = await page.$$eval('#predictions .pred', (els) =>
      els.map((el) => {
        const canvas = el.querySelector('canvas')!;
        const { data } = canvas.getContext('2d')!.getImageData(0, 0, 32, 32);
        let lit = 0;
        for (let i = 0; i < data.length; i += 4) if (data[i]! + data[i + 1]! + data[i + 2]! > 0) lit++;
        return { label: el.querySelector('.label')!.textContent, truth: el.querySelector('.truth')!.textContent, lit, cls: el.className };
      }),
    );
    expect(cells).toHaveLength(Math.min(32, RUN.eval));
    expect(demo.predictions).toHaveLength(cells.length);
    cells.forEach((cell, i) => {
      expect(CIFAR10_CLASSES as readonly string[]).toContain(cell.label);
      expect(cell.truth).toBe(`(${CIFAR10_CLASSES[demo.predictions[i]!.label]})`);
      expect(cell.cls).toContain(demo.predictions[i]!.predicted === demo.predictions[i]!.label ? 'right' : 'wrong');
      expect(cell.lit).toBeGreaterThan(512);
    });

    // The status line, as it went: each stage named while it ran, the whitening fit's progress, an ETA at each step,
    // and the evaluation after each epoch named (the last step's line would otherwise stand for the whole evaluation).
    const said = await statusLog(page);
    const log = `the status line said:\n${said.join('\n')}`;
    const first = (pattern: RegExp) => said.findIndex((line) => pattern.test(line));
    const duration = String.raw`(\d+ h )?\d+ (s|min)`;
    expect(first(/^starting webgpu…$/), log).toBeGreaterThanOrEqual(0);
    // Two passes over the images (their mean, then the covariance): half done after the first.
    expect(first(/^fitting the whitening conv on 64 training images: 0% · \d+ (s|min)/), log).toBeGreaterThan(first(/^starting webgpu/));
    expect(first(/^fitting the whitening conv on 64 training images: 50% · \d+ (s|min)/), log).toBeGreaterThan(0);
    expect(first(new RegExp(`^epoch 1, step 1/${STEPS} .* · ETA ${duration}$`)), log).toBeGreaterThan(0);
    const evaluating = (epoch: number, net: string) =>
      first(new RegExp(`^epoch ${epoch}/2 trained · evaluating the ${net} net on 32 test images \\(flip TTA\\)… ${duration}$`));
    expect(evaluating(1, 'live'), log).toBeGreaterThan(0);
    expect(evaluating(2, 'live'), log).toBeGreaterThan(0);
    if (demo.records.at(-1)!.emaValAcc !== null) expect(evaluating(2, 'EMA'), log).toBeGreaterThan(evaluating(2, 'live'));
    // Each epoch's evaluation comes after its last step and before the next epoch's first.
    expect(evaluating(1, 'live'), log).toBeGreaterThan(first(new RegExp(`^epoch 1, step ${STEPS / 2}/${STEPS} `)));
    expect(evaluating(1, 'live'), log).toBeLessThan(first(new RegExp(`^epoch 2, step ${STEPS / 2 + 1}/${STEPS} `)));
    expect(said.at(-1), log).toMatch(new RegExp(`^done: 2 epochs, ${STEPS} steps in [\\d.]+ s of training · test accuracy `));
    // The charts' step axis: whole steps, each once, up to the run's 8.
    expect(await page.evaluate(() => window.tfjsDataflowDemo.charts['loss']!.ticks.x)).toEqual(['0', '2', '4', '6', '8']);
    // CIFAR-10 has one kind of label: the CIFAR-100 choice is not shown.
    expect(await page.isVisible('#labels-field')).toBe(false);

    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(
      `browser e2e: ${STEPS} steps on ${demo.backend}; setup ${JSON.stringify(demo.timings)} s; ` +
        `losses ${losses.map((l) => l.toFixed(3)).join(' ')}; test acc ${demo.records.map((r) => r.valAcc.toFixed(3)).join(' ')}`,
    );
    expect(pageErrors).toEqual([]);
  }, 600_000);

  it('downloads the trained model as a tfjs LayersModel', async () => {
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), page.click('#download')]);
    expect(download.suggestedFilename()).toBe('speedy-convnet-cifar10.json');
    const model = JSON.parse(readFileSync((await download.path())!, 'utf8')) as {
      modelTopology: { class_name?: string };
      weightsManifest: Array<{ paths: string[] }>;
    };
    expect(model.weightsManifest[0]!.paths).toEqual(['./speedy-convnet-cifar10.weights.bin']);
    expect(JSON.stringify(model.modelTopology)).toContain('WhiteningConv');
    expect(pageErrors).toEqual([]);
  }, 120_000);

  it(`then trains on ${LARGE.train} images (more than 128 MiB holds in float32), its WebGPU device binding at most 128 MiB`, async () => {
    // The same page, started again from its form: its device, and the shaders compiled for the first run, carry over.
    await page.evaluate(
      (config) => {
        const form = document.getElementById('config') as HTMLFormElement;
        for (const [name, value] of Object.entries(config)) (form.elements.namedItem(name) as HTMLInputElement).value = String(value);
      },
      { ...LARGE, micro: LARGE.batch },
    );
    await page.click('#start');
    // The click's handler has started the run (its state set before its first await).
    expect(await page.evaluate(() => window.tfjsDataflowDemo.state)).not.toBe('done');
    await page.waitForFunction(() => ['done', 'error'].includes(window.tfjsDataflowDemo.state), null, { timeout: 540_000, polling: 1000 });
    const demo = await snapshot(page);
    expect(demo.error).toBeNull();
    expect(demo.state).toBe('done');
    expect(demo.backend).toBe('webgpu');
    const limits = await page.evaluate(() => (window as unknown as { bindingLimits?: number[] }).bindingLimits ?? []);
    expect(limits.length).toBeGreaterThan(0);
    expect(Math.max(...limits)).toBeLessThanOrEqual(BINDING_LIMIT);
    // The float32 set would not have fit one binding: 36x36x3 floats an image.
    expect(LARGE.train * 36 * 36 * 3 * 4).toBeGreaterThan(BINDING_LIMIT);
    expect(await statusLog(page)).toContain(`putting 9,000 training images and ${LARGE.eval} test images on webgpu…`);
    expect(demo.steps.map((s) => s.step)).toEqual([1, 2]);
    expect(demo.steps.every((s) => Number.isFinite(s.loss))).toBe(true);
    expect(demo.records).toHaveLength(1);
    expect(pageErrors).toEqual([]);
  }, 600_000);

  it('refuses an unknown ?convPrecision with a message naming it', async () => {
    const p = await browser.newPage();
    try {
      await p.goto(`${server.resolvedUrls!.local[0]!}?convPrecision=half`);
      await p.waitForFunction(() => window.tfjsDataflowDemo.state === 'error', null, { timeout: 60_000, polling: 250 });
      expect(await p.textContent('#error')).toBe("?convPrecision must be one of float32, float16, got 'half'");
      expect(await p.textContent('#progress')).toBe("failed: ?convPrecision must be one of float32, float16, got 'half'");
      expect(await p.inputValue('#conv-precision')).toBe('float32');
      // Charts with no steps yet draw no axis numbers (they once read "0 0 1 1 1").
      const ticks = await p.evaluate(() => Object.values(window.tfjsDataflowDemo.charts).map((c) => c.ticks));
      expect(ticks).toEqual([0, 1, 2, 3].map(() => ({ x: [], y: [] })));
      expect(await p.isVisible('#labels-field')).toBe(false);
    } finally {
      await p.close();
    }
  }, 120_000);

  it('after an error the status line says what failed and while doing what, not the stage it was in', async () => {
    const p = await browser.newPage();
    try {
      // The device fails as the whitening fit starts: every queue submission from then on throws.
      await p.addInitScript(() => {
        const submit = GPUQueue.prototype.submit;
        let failing = false;
        GPUQueue.prototype.submit = function (this: GPUQueue, buffers: Iterable<GPUCommandBuffer>) {
          if (failing) throw new Error('injected GPU failure');
          return submit.call(this, buffers);
        };
        document.addEventListener('DOMContentLoaded', () => {
          const line = document.getElementById('progress')!;
          new MutationObserver(() => {
            if (line.textContent!.startsWith('fitting the whitening conv')) failing = true;
          }).observe(line, { childList: true, characterData: true, subtree: true });
        });
      });
      await p.addInitScript(recordStatusLine);
      const query = new URLSearchParams({
        data: '/cifar10/',
        backend: 'webgpu',
        autostart: '1',
        ...Object.fromEntries(Object.entries(RUN).map(([k, v]) => [k, String(v)])),
      });
      await p.goto(`${server.resolvedUrls!.local[0]!}?${query}`);
      await p.waitForFunction(() => ['error', 'done'].includes(window.tfjsDataflowDemo.state), null, { timeout: 240_000, polling: 250 });
      expect(await p.evaluate(() => window.tfjsDataflowDemo.state)).toBe('error');
      const said = await statusLog(p);
      expect(said.some((line) => line.startsWith('fitting the whitening conv on 64 training images'))).toBe(true);
      const error = (await p.textContent('#error'))!;
      expect(error).toContain('injected GPU failure');
      expect(await p.textContent('#progress')).toBe(`failed while fitting the whitening conv: ${error}`);
      // The clock of the stage that failed is stopped: the line stays as it is.
      await new Promise((r) => setTimeout(r, 1500));
      expect(await p.textContent('#progress')).toBe(`failed while fitting the whitening conv: ${error}`);
    } finally {
      await p.close();
    }
  }, 300_000);

  it('says when there is no WebGPU, offers WebAssembly, and trains there from a picked tar.gz', async () => {
    const { chromium } = await import('playwright-core');
    // Without --enable-unsafe-webgpu, Linux Chromium has navigator.gpu but no adapter.
    const plain = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS.filter((a) => !a.includes('webgpu')) });
    try {
      const p = await plain.newPage();
      await p.addInitScript(() => Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', { get: () => 8 }));
      await p.goto(server.resolvedUrls!.local[0]!);
      await p.waitForSelector('#no-webgpu', { state: 'visible', timeout: 60_000 });
      expect(await p.textContent('#no-webgpu')).toContain('This browser has no WebGPU');
      expect(await p.inputValue('#backend')).toBe('wasm');
      await p.selectOption('#backend', 'webgpu');
      await p.click('#use-wasm');
      expect(await p.inputValue('#backend')).toBe('wasm');
      expect(await p.isVisible('#no-webgpu')).toBe(false);

      // The official archive's layout, gunzipped in the page; then a short run on wasm (its .wasm files come from the build).
      const archive = path.join(work, 'cifar-10-binary.tar.gz');
      execFileSync('tar', ['-czf', archive, '-C', work, '--transform', 's,^cifar10,cifar-10-batches-bin,', 'cifar10']);
      await p.setInputFiles('#files', archive);
      await p.waitForFunction(() => document.querySelector('#data-status')!.textContent!.startsWith('CIFAR-10 from'), null, {
        timeout: 60_000,
      });
      expect(await p.textContent('#data-status')).toContain('cifar-10-binary.tar.gz');
      await p.click('#config summary'); // opens 'more' (micro-batch, seed)
      for (const [field, value] of Object.entries({ ...RUN, epochs: 1, micro: RUN.batch }))
        await p.fill(`input[name="${field}"]`, String(value));
      await p.click('#start');
      await p.waitForFunction(() => ['done', 'error'].includes(window.tfjsDataflowDemo.state), null, { timeout: 120_000, polling: 250 });
      const demo = await snapshot(p);
      expect(demo.error).toBeNull();
      expect(demo.backend).toBe('wasm');
      expect(demo.steps).toHaveLength(RUN.train / RUN.batch);
      expect(demo.predictions).toHaveLength(RUN.eval);
      expect(await p.textContent('#progress')).toMatch(/^done: 1 epoch, 4 steps in /);
      // The server sends COOP and COEP, so the page is cross-origin isolated (SharedArrayBuffer) and wasm runs threads:
      // on the 8 cores the page is told of, more than one (without the headers, one whatever the cores).
      expect(await p.evaluate(() => crossOriginIsolated)).toBe(true);
      const threads = Number(/WebAssembly SIMD with (\d+) threads?/.exec((await p.textContent('#backend-reason'))!)?.[1]);
      expect(threads).toBeGreaterThan(1);
    } finally {
      await plain.close();
    }
  }, 120_000);
});
