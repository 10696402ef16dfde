import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { typecheckSnippets } from '../helpers/snippets.js';

// The API reference (`npm run docs:api`, TypeDoc over src/index.ts and src/node.ts): TypeDoc's validation passes
// (every public item documented, no broken link, nothing referenced that is not exported: typedoc.json makes each
// of those an error), and every `@example` in src/ type-checks against the real API, 'tfjs-dataflow' and
// 'tfjs-dataflow/node' mapped to src/.

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const scratch = join(root, '.cache', 'api-examples');

interface Example {
  /** Source file, relative to the repository root. */
  file: string;
  /** 1-based line of the example's first code line. */
  line: number;
  /** The declaration the example documents. */
  declaration: string;
  code: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** The fenced blocks of each `@example` tag in one source file's doc comments, with the declaration after each. */
function examplesIn(text: string, file: string): Example[] {
  const examples: Example[] = [];
  const lines = text.split('\n');
  let open: { line: number; code: string[] } | null = null;
  let inExample = false;
  const pending: Omit<Example, 'declaration'>[] = [];
  lines.forEach((raw, i) => {
    const body = /^\s*\*\s?(.*)$/.exec(raw)?.[1];
    if (/^\s*\/\*\*/.test(raw)) inExample = false;
    if (body !== undefined && /^@example\b/.test(body)) inExample = true;
    else if (body !== undefined && /^@\w/.test(body)) inExample = false;
    if (body !== undefined && inExample && /^```/.test(body)) {
      if (open == null) open = { line: i + 2, code: [] };
      else {
        pending.push({ file, line: open.line, code: open.code.join('\n') });
        open = null;
      }
      return;
    }
    if (open != null) {
      open.code.push(body ?? '');
      return;
    }
    const declaration = /^\s*export\s+(?:abstract\s+)?(?:async\s+)?(?:class|function|const|interface|type)\s+([\w$]+)/.exec(raw)?.[1];
    if (declaration && pending.length) for (const e of pending.splice(0)) examples.push({ ...e, declaration });
  });
  return examples;
}

describe('examplesIn', () => {
  it('finds the code of each @example and the declaration it belongs to', () => {
    const text = ['/**', ' * Adds.', ' *', ' * @example', ' * ```ts', ' * add(1, 2);', ' * ```', ' */', 'export function add() {}'].join(
      '\n',
    );
    expect(examplesIn(text, 'x.ts')).toEqual([{ file: 'x.ts', line: 6, declaration: 'add', code: 'add(1, 2);' }]);
  });
});

describe('the API reference', () => {
  const examples = sourceFiles(join(root, 'src')).flatMap((f) => examplesIn(readFileSync(f, 'utf8'), relative(root, f)));

  it('has an example on each layer, op, augmentation and training class', () => {
    const documented = new Set(examples.map((e) => e.declaration));
    const required = [
      // Layers
      'Conv',
      'ConvGroup',
      'DiscreteAction',
      'WhiteningConv',
      'BatchNorm',
      'Linear',
      'Gelu',
      'MaxPool2',
      'GlobalMaxPool',
      'CompositeLayer',
      // Ops
      'simulateDiscreteAction',
      'unbiasedStd',
      'stopGradient',
      'gelu',
      'batchNormGelu',
      'maxPool2',
      'globalMaxPool',
      'seedLoss',
      'DeviceRandom',
      // Augmentations
      'batchCrop',
      'batchFlipLR',
      'batchCutmix',
      'randomSquareMasks',
      'reflectPad',
      'drawEpochPlan',
      // Training
      'Trainer',
      'SGD',
      'OneCycle',
      'NetworkEMA',
    ];
    expect(required.filter((name) => !documented.has(name))).toEqual([]);
  });

  it('examples type-check against the library source', () => {
    const { errors, unexplained } = typecheckSnippets(root, scratch, examples);
    expect(errors, errors.join('\n')).toEqual([]);
    expect(unexplained).toBe('');
  }, 180_000);

  it("passes TypeDoc's validation: no undocumented public item, broken link or unexported type", () => {
    let output = '';
    let status = 0;
    try {
      output = execFileSync(process.execPath, [join(root, 'node_modules', 'typedoc', 'bin', 'typedoc'), '--emit', 'none'], {
        cwd: root,
        encoding: 'utf8',
        stdio: 'pipe',
      });
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string; status?: number };
      output = `${err.stdout ?? ''}${err.stderr ?? ''}`;
      status = err.status ?? 1;
    }
    const warnings = output.split('\n').filter((l) => /\[(warning|error)\]/.test(l));
    expect(warnings, warnings.join('\n')).toEqual([]);
    expect(status).toBe(0);
  }, 180_000);
});
