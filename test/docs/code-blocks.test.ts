import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// Every fenced block whose info string is `ts runnable` (or `typescript runnable`) in README.md and docs/*.md
// is written to a scratch directory inside the repository and type-checked with tsc against the real API:
// 'tfjs-dataflow' and 'tfjs-dataflow/node' are mapped to src/, so no build is needed and a renamed or
// removed export fails here. docs/README-draft.md is covered while its content waits to move into README.md.

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const scratch = join(root, '.cache', 'doc-blocks');

export interface CodeBlock {
  /** Markdown file, relative to the repository root. */
  file: string;
  /** 1-based line of the block's first code line. */
  line: number;
  code: string;
}

const RUNNABLE = /^(ts|typescript)\s+runnable\b/;

/** The runnable blocks of one markdown text. */
export function runnableBlocks(markdown: string, file: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const lines = markdown.split('\n');
  let open: { fence: string; runnable: boolean; line: number; code: string[] } | null = null;
  lines.forEach((text, i) => {
    const fence = /^(\s*)(`{3,}|~{3,})(.*)$/.exec(text);
    if (open == null) {
      if (fence) open = { fence: fence[2]!, runnable: RUNNABLE.test(fence[3]!.trim()), line: i + 2, code: [] };
      return;
    }
    if (fence && fence[2]!.startsWith(open.fence) && fence[3]!.trim() === '') {
      if (open.runnable) blocks.push({ file, line: open.line, code: open.code.join('\n') });
      open = null;
      return;
    }
    open.code.push(text);
  });
  if (open != null) throw new Error(`${file}: unclosed code fence opened at line ${(open as { line: number }).line - 1}`);
  return blocks;
}

function markdownFiles(): string[] {
  const docs = readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join('docs', f));
  return ['README.md', ...docs].filter((f) => existsSync(join(root, f)));
}

describe('runnableBlocks', () => {
  it('finds only blocks marked runnable, with their line numbers', () => {
    const md = ['# t', '```ts', 'skip();', '```', '', '```ts runnable', 'const a = 1;', 'void a;', '```', '````ts runnable', '```', '````'].join('\n');
    expect(runnableBlocks(md, 'x.md')).toEqual([
      { file: 'x.md', line: 7, code: 'const a = 1;\nvoid a;' },
      { file: 'x.md', line: 11, code: '```' },
    ]);
  });
});

describe('runnable code blocks in README.md and docs/*.md', () => {
  const blocks = markdownFiles().flatMap((f) => runnableBlocks(readFileSync(join(root, f), 'utf8'), f));

  it('exist where the docs promise them', () => {
    const files = new Set(blocks.map((b) => b.file));
    expect(files).toContain('docs/README-draft.md');
    expect(files).toContain('docs/extending.md');
    expect(blocks.length).toBeGreaterThanOrEqual(5);
  });

  it('type-check against the library source', () => {
    rmSync(scratch, { recursive: true, force: true });
    mkdirSync(scratch, { recursive: true });
    const names = blocks.map((b, i) => {
      const name = `${b.file.replace(/[^A-Za-z0-9]+/g, '_')}_L${b.line}_${i}.ts`;
      // `export {}` makes every block a module, so top-level await and local names stay per block.
      writeFileSync(join(scratch, name), `${b.code}\nexport {};\n`);
      return name;
    });
    const src = relative(scratch, join(root, 'src'));
    writeFileSync(join(scratch, 'tsconfig.json'), JSON.stringify({
      extends: relative(scratch, join(root, 'tsconfig.json')),
      compilerOptions: {
        baseUrl: '.',
        paths: { 'tfjs-dataflow': [`${src}/index.ts`], 'tfjs-dataflow/node': [`${src}/node.ts`] },
        // Snippets may declare a name only to show it.
        noUnusedLocals: false,
        noUnusedParameters: false,
      },
      include: ['*.ts'],
    }, null, 2));
    let output = '';
    try {
      execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '--pretty', 'false', '-p', scratch], { cwd: root, encoding: 'utf8' });
    } catch (e) {
      output = `${(e as { stdout?: string }).stdout ?? ''}${(e as { stderr?: string }).stderr ?? ''}`;
    }
    // Only the snippets' own errors count (src has its own typecheck); each is mapped back to its markdown line.
    const errors = output.split('\n').flatMap((text) => {
      const m = /^(?:.*[\\/])?([^\\/()]+\.ts)\((\d+),(\d+)\): (error .*)$/.exec(text.trim());
      const index = m ? names.indexOf(m[1]!) : -1;
      if (!m || index < 0) return [];
      const block = blocks[index]!;
      return [`${block.file}:${block.line + Number(m[2]) - 1}:${m[3]} ${m[4]}`];
    });
    const unexplained = output.trim() !== '' && errors.length === 0 && !/src[\\/]/.test(output) ? output : '';
    expect(errors, errors.join('\n')).toEqual([]);
    expect(unexplained).toBe('');
  }, 180_000);
});
