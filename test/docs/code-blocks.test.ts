import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { typecheckSnippets, writeSnippetConfig } from '../helpers/snippets.js';

// Every fenced block whose info string is `ts runnable` (or `typescript runnable`) in README.md and docs/*.md
// is written to a scratch directory inside the repository and type-checked with tsc against the real API:
// 'tfjs-dataflow' and 'tfjs-dataflow/node' are mapped to src/, so no build is needed and a renamed or
// removed export fails here. Blocks marked `ts runnable execute` are quick and are also run with tsx (on the
// backend they choose; keep them to the cpu backend and tiny shapes).

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const scratch = join(root, '.cache', 'doc-blocks');

interface CodeBlock {
  /** Markdown file, relative to the repository root. */
  file: string;
  /** 1-based line of the block's first code line. */
  line: number;
  code: string;
  /** Marked `runnable execute`: also run it. */
  execute: boolean;
}

const RUNNABLE = /^(ts|typescript)\s+runnable\b/;

/** The runnable blocks of one markdown text. */
function runnableBlocks(markdown: string, file: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const lines = markdown.split('\n');
  let open: { fence: string; runnable: boolean; execute: boolean; line: number; code: string[] } | null = null;
  lines.forEach((text, i) => {
    const fence = /^(\s*)(`{3,}|~{3,})(.*)$/.exec(text);
    if (open == null) {
      const info = fence?.[3]?.trim() ?? '';
      if (fence)
        open = {
          fence: fence[2]!,
          runnable: RUNNABLE.test(info),
          execute: RUNNABLE.test(info) && /\bexecute\b/.test(info),
          line: i + 2,
          code: [],
        };
      return;
    }
    if (fence && fence[2]!.startsWith(open.fence) && fence[3]!.trim() === '') {
      if (open.runnable) blocks.push({ file, line: open.line, code: open.code.join('\n'), execute: open.execute });
      open = null;
      return;
    }
    open.code.push(text);
  });
  if (open != null) throw new Error(`${file}: unclosed code fence opened at line ${(open as { line: number }).line - 1}`);
  return blocks;
}

function markdownFiles(): string[] {
  const docs = readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f));
  return ['README.md', ...docs].filter((f) => existsSync(join(root, f)));
}

/** The scratch tsconfig: the repository's, with the package name mapped to src/. */
function writeScratchConfig(): void {
  writeSnippetConfig(root, scratch);
}

describe('runnableBlocks', () => {
  it('finds only blocks marked runnable, with their line numbers', () => {
    const md = [
      '# t',
      '```ts',
      'skip();',
      '```',
      '',
      '```ts runnable',
      'const a = 1;',
      'void a;',
      '```',
      '````ts runnable execute',
      '```',
      '````',
    ].join('\n');
    expect(runnableBlocks(md, 'x.md')).toEqual([
      { file: 'x.md', line: 7, code: 'const a = 1;\nvoid a;', execute: false },
      { file: 'x.md', line: 11, code: '```', execute: true },
    ]);
  });
});

describe('runnable code blocks in README.md and docs/*.md', () => {
  const blocks = markdownFiles().flatMap((f) => runnableBlocks(readFileSync(join(root, f), 'utf8'), f));

  it('exist where the docs promise them', () => {
    const files = new Set(blocks.map((b) => b.file));
    expect(files).toContain('README.md');
    expect(files).toContain('docs/extending.md');
    expect(blocks.length).toBeGreaterThanOrEqual(5);
  });

  it('type-check against the library source', () => {
    const { errors, unexplained } = typecheckSnippets(root, scratch, blocks);
    expect(errors, errors.join('\n')).toEqual([]);
    expect(unexplained).toBe('');
  }, 180_000);

  it('marked execute, run to completion', () => {
    const runnable = blocks.map((b, i) => ({ b, i })).filter(({ b }) => b.execute);
    expect(runnable.length).toBeGreaterThanOrEqual(2);
    writeScratchConfig();
    const tsx = join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs');
    for (const { b, i } of runnable) {
      const name = `${b.file.replace(/[^A-Za-z0-9]+/g, '_')}_L${b.line}_${i}.mts`;
      writeFileSync(join(scratch, name), `${b.code}\nexport {};\n`);
      try {
        execFileSync(process.execPath, [tsx, '--tsconfig', join(scratch, 'tsconfig.json'), join(scratch, name)], {
          cwd: root,
          encoding: 'utf8',
          stdio: 'pipe',
          timeout: 120_000,
        });
      } catch (e) {
        const err = e as { stdout?: string; stderr?: string; message: string };
        throw new Error(`${b.file}:${b.line}: the block failed when run: ${err.stderr || err.stdout || err.message}`);
      }
    }
  }, 300_000);
});
