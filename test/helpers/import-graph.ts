import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

/** One module's imports of other modules of the same tree, as paths relative to the tree's root. */
export type ImportGraph = Map<string, string[]>;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/**
 * The relative imports of every .ts file under `root` (static, type-only, re-exports and dynamic
 * `import()` alike: a type-only loop still ties two modules together), keyed by path from `root`.
 */
export function importGraph(root: string): ImportGraph {
  const graph: ImportGraph = new Map();
  for (const file of sourceFiles(root)) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const targets = importedFiles
      .map((f) => f.fileName)
      .filter((name) => name.startsWith('.'))
      .map((name) => relative(root, resolve(dirname(file), name)).replace(/\.js$/, '.ts'));
    graph.set(relative(root, file), [...new Set(targets)]);
  }
  return graph;
}

/** Every elementary cycle found by a depth-first search, each as the modules on it (first repeated last). */
export function findCycles(graph: ImportGraph): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): void => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  return cycles;
}

/** The layer of a module: its top folder under the root, or the file name for a top-level file. */
export function layerOf(module: string): string {
  return module.split(/[\\/]/)[0]!;
}

/** Imports from a module to one in a later layer of `order` (lowest first), as "from -> to". Throws on a layer `order` lacks. */
export function upwardImports(graph: ImportGraph, order: readonly string[]): string[] {
  const rank = (module: string): number => {
    const index = order.indexOf(layerOf(module));
    if (index < 0)
      throw new Error(`upwardImports: ${module} is in layer '${layerOf(module)}', which the order [${order.join(', ')}] does not list`);
    return index;
  };
  const upward: string[] = [];
  for (const [from, targets] of graph) {
    rank(from);
    for (const to of targets) if (rank(to) > rank(from)) upward.push(`${from} -> ${to}`);
  }
  return upward.sort();
}
