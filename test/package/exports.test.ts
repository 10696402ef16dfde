import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = join(root, 'dist');
const built = existsSync(join(dist, 'index.js'));

/** Runs a snippet in a fresh Node process from the package root, where `tfjs-dataflow` resolves to this package. */
function node(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8', env: { ...process.env } });
}

describe.skipIf(!built)(`the built package${built ? '' : ' (skipped: dist/ missing; run npm run build)'}`, () => {
  it('imports as ESM, both entries', () => {
    const out = node([
      '--input-type=module',
      '-e',
      `
      const main = await import('tfjs-dataflow');
      const nodeEntry = await import('tfjs-dataflow/node');
      console.log(JSON.stringify([typeof main.initBackend, typeof main.KernelCounter, typeof nodeEntry.initBackend, typeof nodeEntry.installNodeWebGPU,
        typeof nodeEntry.writeCheckpointFiles, typeof nodeEntry.readCheckpointFiles, typeof nodeEntry.lockDirectory, typeof main.writeCheckpointFiles]));
    `,
    ]);
    // Checkpoint files are Node's: the browser entry keeps the in-memory checkpoint.
    expect(JSON.parse(out)).toEqual(['function', 'function', 'function', 'function', 'function', 'function', 'function', 'undefined']);
  });

  it('requires as CommonJS, both entries', () => {
    const out = node([
      '-e',
      `
      const main = require('tfjs-dataflow');
      const nodeEntry = require('tfjs-dataflow/node');
      console.log(JSON.stringify([typeof main.initBackend, typeof main.KernelCounter, typeof nodeEntry.initBackend, main.KernelCounter === nodeEntry.KernelCounter]));
    `,
    ]);
    expect(JSON.parse(out)).toEqual(['function', 'function', 'function', true]);
  });

  it('keeps Node-only modules out of the browser entry', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(pkg.exports['.'].import.default).toBe('./dist/index.js');
    // Everything the main entry can reach: itself and the chunks it imports, transitively.
    const browserFiles: string[] = [];
    const pending = ['index.js'];
    while (pending.length) {
      const file = pending.pop()!;
      if (browserFiles.includes(file)) continue;
      browserFiles.push(file);
      const code = readFileSync(join(dist, file), 'utf8');
      for (const m of code.matchAll(/(?:from|import)\s*\(?\s*["']\.\/([\w.-]+\.js)["']/g)) pending.push(m[1]!);
    }
    expect(browserFiles.length).toBeGreaterThan(1);
    expect(readdirSync(dist)).toEqual(expect.arrayContaining(browserFiles));
    for (const file of browserFiles) {
      const code = readFileSync(join(dist, file), 'utf8');
      expect(code, file).not.toMatch(/from ["']node:|require\(["']node:|import\(["']node:/);
      expect(code, file).not.toMatch(/import\(["']webgpu["']\)|from ["']webgpu["']/);
      expect(code, file).not.toMatch(/["']@tensorflow\/tfjs-node/);
    }
  });

  it('ships type declarations for each entry and format', () => {
    for (const f of ['index.d.ts', 'index.d.cts', 'node.d.ts', 'node.d.cts']) expect(existsSync(join(dist, f)), f).toBe(true);
  });
});
