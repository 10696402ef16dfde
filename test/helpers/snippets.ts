// Code snippets from the docs (README blocks, @example tags) type-checked with tsc against the library's source:
// 'tfjs-dataflow' and 'tfjs-dataflow/node' map to src/, so no build is needed and a renamed export fails.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** A snippet and where it stands: its file and the 1-based line of its first code line. */
export interface Snippet {
  file: string;
  line: number;
  code: string;
}

/** Writes the scratch directory's tsconfig.json: the repository's, with the package names mapped to src/. */
export function writeSnippetConfig(root: string, scratch: string): void {
  mkdirSync(scratch, { recursive: true });
  const src = relative(scratch, join(root, 'src'));
  writeFileSync(
    join(scratch, 'tsconfig.json'),
    JSON.stringify(
      {
        extends: relative(scratch, join(root, 'tsconfig.json')),
        compilerOptions: {
          baseUrl: '.',
          paths: { 'tfjs-dataflow': [`${src}/index.ts`], 'tfjs-dataflow/node': [`${src}/node.ts`] },
          // Snippets may declare a name only to show it.
          noUnusedLocals: false,
          noUnusedParameters: false,
        },
        include: ['*.ts'],
      },
      null,
      2,
    ),
  );
}

/**
 * Writes each snippet to `scratch` as a module of its own (`export {}`, so top-level await and local names stay
 * per snippet), runs tsc over them, and returns each error at its place in the docs (`file:line:column error ...`),
 * plus tsc's output when it failed without an error of a snippet's or of src's (e.g. a broken configuration).
 */
export function typecheckSnippets(root: string, scratch: string, snippets: readonly Snippet[]): { errors: string[]; unexplained: string } {
  rmSync(scratch, { recursive: true, force: true });
  writeSnippetConfig(root, scratch);
  const names = snippets.map((s, i) => {
    const name = `${s.file.replace(/[^A-Za-z0-9]+/g, '_')}_L${s.line}_${i}.ts`;
    writeFileSync(join(scratch, name), `${s.code}\nexport {};\n`);
    return name;
  });
  let output = '';
  try {
    execFileSync(
      process.execPath,
      [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '--pretty', 'false', '-p', scratch],
      {
        cwd: root,
        encoding: 'utf8',
      },
    );
  } catch (e) {
    output = `${(e as { stdout?: string }).stdout ?? ''}${(e as { stderr?: string }).stderr ?? ''}`;
  }
  // Only the snippets' own errors count (src has its own typecheck); each is mapped back to its line in the docs.
  const errors = output.split('\n').flatMap((text) => {
    const m = /^(?:.*[\\/])?([^\\/()]+\.ts)\((\d+),(\d+)\): (error .*)$/.exec(text.trim());
    const index = m ? names.indexOf(m[1]!) : -1;
    if (!m || index < 0) return [];
    const snippet = snippets[index]!;
    return [`${snippet.file}:${snippet.line + Number(m[2]) - 1}:${m[3]} ${m[4]}`];
  });
  const unexplained = output.trim() !== '' && errors.length === 0 && !/src[\\/]/.test(output) ? output : '';
  return { errors, unexplained };
}
