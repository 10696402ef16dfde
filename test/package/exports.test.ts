import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

describe('the Node versions', () => {
  it("engines is what CI tests: this machine's Node 20, and .ci/node-versions' 22 and 24", () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    const versions = /^VERSIONS=\(([^)]*)\)$/m
      .exec(readFileSync(join(root, '.ci', 'node-versions'), 'utf8'))![1]!
      .trim()
      .split(/\s+/);
    expect(versions.map((v) => v.split('.')[0])).toEqual(['22', '24']);
    expect(pkg.engines.node).toBe('^20.0.0 || ^22.0.0 || ^24.0.0');
  });
});

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
    // Checkpoint files are Node's: the browser entry keeps the in-memory checkpoint. The directory lock beneath
    // them is internal.
    expect(JSON.parse(out)).toEqual(['function', 'function', 'function', 'function', 'function', 'function', 'undefined', 'undefined']);
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

  it('declarations keep their real names across files (no rollup-minified `a2 as DiscreteAction`)', () => {
    const declarations = readdirSync(dist).filter((f) => /\.d\.c?ts$/.test(f));
    let crossings = 0;
    for (const file of declarations) {
      const code = readFileSync(join(dist, file), 'utf8');
      for (const [, list, target, ext] of code.matchAll(/\{([^}]*)\} from '\.\/([\w.-]+)\.(c?js)'/g)) {
        const other = readFileSync(join(dist, `${target}.d.${ext === 'cjs' ? 'cts' : 'ts'}`), 'utf8');
        for (const specifier of list!.split(',').map((s) => s.trim())) {
          // `type X as Y` or `X`: X must be what the other file declares and exports, not a short alias of it.
          const name = /^(?:type\s+)?([\w$]+)/.exec(specifier)![1]!;
          expect(other, `${file} imports '${name}' from ${target}`).toMatch(
            new RegExp(`\\b(?:class|interface|type|function|const|let|var|enum|namespace) ${name.replace('$', '\\$')}\\b`),
          );
          crossings++;
        }
      }
      // The shared chunk's own export list names each declaration once, as itself.
      const own = /\nexport \{([^}]*)\};\s*$/.exec(code);
      if (own) expect(own[1], file).not.toMatch(/ as /);
    }
    expect(crossings).toBeGreaterThan(100);
    expect(readFileSync(join(dist, 'index.d.ts'), 'utf8')).toMatch(/export \{[^}]*\bDiscreteAction\b/);
  });

  it("a bundler keeps the layer registrations of a bare import 'tfjs-dataflow' (sideEffects)", async () => {
    // tfjs-layers' registerClass calls run when the library's chunk is evaluated (kernels register later, in
    // initBackend): `import 'tfjs-dataflow'` then `loadLayersModel` is a supported use, so the package's
    // sideEffects must not let a bundler drop the import. esbuild (tsup's bundler) honours sideEffects.
    const { build } = await import('esbuild');
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(pkg.sideEffects).toEqual(['./dist/*.js', './dist/*.cjs']);
    const work = mkdtempSync(join(tmpdir(), 'tfjs-dataflow-side-effects-'));
    try {
      mkdirSync(join(work, 'node_modules'));
      symlinkSync(root, join(work, 'node_modules', 'tfjs-dataflow'));
      symlinkSync(join(root, 'node_modules', '@tensorflow'), join(work, 'node_modules', '@tensorflow'));
      writeFileSync(
        join(work, 'app.mjs'),
        "import 'tfjs-dataflow';\nimport { serialization } from '@tensorflow/tfjs-core';\n" +
          'console.log(JSON.stringify(Object.keys(serialization.SerializationMap.getMap().classNameMap).sort()));\n',
      );
      const bundle = async (format: 'esm' | 'cjs') => {
        const outfile = join(work, `bundle-${format}.${format === 'esm' ? 'mjs' : 'cjs'}`);
        const result = await build({
          entryPoints: [join(work, 'app.mjs')],
          bundle: true,
          platform: 'node',
          format,
          outfile,
          external: ['@tensorflow/*', 'webgpu'],
          logLevel: 'silent',
        });
        // esbuild warns "Ignoring this import because ... was marked as having no side effects" when it drops one.
        expect(result.warnings.map((w) => w.text)).toEqual([]);
        return JSON.parse(execFileSync(process.execPath, [outfile], { cwd: work, encoding: 'utf8' }).trim().split('\n').at(-1)!);
      };
      for (const format of ['esm', 'cjs'] as const) {
        expect(await bundle(format), format).toEqual(
          expect.arrayContaining(
            ['BatchNorm', 'Conv', 'ConvGroup', 'DiscreteAction', 'Gelu', 'GlobalMaxPool', 'Linear', 'MaxPool2', 'WhiteningConv'].map(
              (name) => `tfjs-dataflow>${name}`,
            ),
          ),
        );
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
