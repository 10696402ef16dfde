// Gives the shared declaration chunk that tsup writes into dist/ its real export names back.
//
// tsup bundles the declarations of '.' and './node' with rollup, which puts what both share into a chunk and
// exports it under minified names (`DiscreteAction as a2`, rollup's output.minifyInternalExports); the entries
// re-export `a2 as DiscreteAction`. Editors and a consumer's own declaration emit then show `a2`. tsup 8.5 offers
// no way to set that rollup option (its dts worker builds the output options itself, and experimentalDts needs
// @microsoft/api-extractor), so `npm run build` runs this after tsup: every chunk exports its declarations under
// their own names, and every import and re-export of a chunk follows. Anything it cannot rewrite fails the build.
//
// Usage: tsx tools/build/dts-names.ts [dist]

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

interface Specifier {
  type: boolean;
  name: string;
  as: string;
}

function parseSpecifiers(list: string, where: string): Specifier[] {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const m = /^(type\s+)?([\w$]+)(?:\s+as\s+([\w$]+))?$/.exec(s);
      if (!m) throw new Error(`dts-names: cannot read the specifier '${s}' in ${where}`);
      return { type: Boolean(m[1]), name: m[2]!, as: m[3] ?? m[2]! };
    });
}

function printSpecifiers(specifiers: Specifier[]): string {
  return specifiers.map((s) => `${s.type ? 'type ' : ''}${s.name === s.as ? s.name : `${s.name} as ${s.as}`}`).join(', ');
}

/** Rewrites the declaration files in `dist`; returns the chunks it renamed and how many names each had. */
function restoreDtsNames(dist: string): Record<string, number> {
  const files = readdirSync(dist).filter((f) => /\.d\.c?ts$/.test(f));
  const text = new Map(files.map((f) => [f, readFileSync(join(dist, f), 'utf8')]));
  // Each file's imports of other declaration files in dist.
  const imported = new Set<string>();
  for (const code of text.values()) {
    for (const m of code.matchAll(/from '\.\/([\w.-]+)\.(c?js)'/g)) imported.add(`${m[1]}.d.${m[2] === 'cjs' ? 'cts' : 'ts'}`);
  }
  const renamed: Record<string, number> = {};
  for (const chunk of files.filter((f) => imported.has(f))) {
    const code = text.get(chunk)!;
    const last = /\nexport \{([^}]*)\};\s*$/.exec(code);
    if (!last) throw new Error(`dts-names: ${chunk} is imported by another declaration file but does not end in one export list`);
    const specifiers = parseSpecifiers(last[1]!, chunk);
    // The chunk's exported name -> its declaration's own name.
    const real = new Map(specifiers.map((s) => [s.as, s.name]));
    const names = new Set(specifiers.map((s) => s.name));
    if (names.size !== specifiers.length) throw new Error(`dts-names: ${chunk} exports one declaration under two names`);
    const exports = printSpecifiers(specifiers.map((s) => ({ ...s, as: s.name })));
    text.set(chunk, `${code.slice(0, last.index)}\nexport { ${exports} };\n`);
    renamed[chunk] = specifiers.filter((s) => s.as !== s.name).length;

    const target = chunk.replace(/\.d\.(c?)ts$/, '.$1js');
    for (const [file, source] of text) {
      if (file === chunk) continue;
      let rewritten = 0;
      const next = source.replace(
        new RegExp(`^(import|export) (type )?\\{([^}]*)\\} from '\\./${target.replace(/[.$]/g, '\\$&')}';$`, 'gm'),
        (_, keyword: string, type: string | undefined, list: string) => {
          rewritten++;
          const mapped = parseSpecifiers(list, file).map((s) => {
            const name = real.get(s.name);
            if (name === undefined) throw new Error(`dts-names: ${file} takes '${s.name}' from ${chunk}, which does not export it`);
            return { ...s, name };
          });
          return `${keyword} ${type ?? ''}{ ${printSpecifiers(mapped)} } from './${target}';`;
        },
      );
      const uses = source.split(`'./${target}'`).length - 1;
      if (uses !== rewritten) throw new Error(`dts-names: ${file} refers to ${chunk} in a form this script does not rewrite`);
      text.set(file, next);
    }
  }
  for (const [file, code] of text) writeFileSync(join(dist, file), code);
  return renamed;
}

const chunks = Object.entries(restoreDtsNames(process.argv[2] ?? 'dist'));
if (chunks.length === 0) console.log('dts-names: no shared declaration chunk');
for (const [chunk, n] of chunks) console.log(`dts-names: ${chunk}: ${n} export names restored`);
