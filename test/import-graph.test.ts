import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findCycles, importGraph, upwardImports } from './helpers/import-graph.js';

/**
 * The layers of src/, lowest first: a module imports only its own layer and those before it, so the
 * data path reads one way (bytes -> tensors -> epoch batches -> net -> loss -> step -> EMA -> eval).
 */
const LAYER_ORDER = [
  'validation.ts',
  'backend',
  'ops',
  'layers',
  'augment',
  'data',
  'init',
  'models',
  'train',
  'io',
  'index.ts',
  'node.ts',
] as const;

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

describe('the import graph of src/', () => {
  const graph = importGraph(SRC);

  it('sees the modules and their imports', () => {
    expect(graph.size).toBeGreaterThan(50);
    expect(graph.get('index.ts')).toContain('backend/init.ts');
    expect(graph.get('train/trainer.ts')?.length).toBeGreaterThan(3);
  });

  it('has no import cycles', () => {
    expect(findCycles(graph).map((cycle) => cycle.join(' -> '))).toEqual([]);
  });

  it(`imports only downwards in the layer order ${LAYER_ORDER.join(' < ')}`, () => {
    expect(upwardImports(graph, LAYER_ORDER)).toEqual([]);
  });

  it('finds a planted cycle and a planted upward import (the checks can fail)', () => {
    const planted = new Map([
      ['ops/a.ts', ['backend/b.ts']],
      ['backend/b.ts', ['ops/a.ts']],
    ]);
    expect(findCycles(planted)).toEqual([['backend/b.ts', 'ops/a.ts', 'backend/b.ts']]);
    expect(upwardImports(planted, LAYER_ORDER)).toEqual(['backend/b.ts -> ops/a.ts']);
    expect(() => upwardImports(new Map([['nowhere/c.ts', []]]), LAYER_ORDER)).toThrow(/layer 'nowhere'/);
  });
});
