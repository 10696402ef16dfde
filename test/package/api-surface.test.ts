import { describe, expect, it } from 'vitest';
import * as main from '../../src/index.js';
import * as nodeEntry from '../../src/node.js';

/**
 * Helpers the library uses internally and no longer exports: argument checks, the tar reader, and the file lock,
 * process records and atomic writes beneath the checkpoint files. The bundled examples import them from their
 * modules; a user's code cannot.
 */
const INTERNAL = [
  'checkBoolean',
  'checkFiniteNonNegative',
  'checkInput',
  'checkOptionalFactor',
  'checkPositiveInt',
  'checkSpatialAtLeast',
  'checkUnitInterval',
  'knownLastAxis',
  'singleInput',
  'singleShape',
  'readTar',
  'lockDirectory',
  'DirectoryLockedError',
  'LOCK_FILE',
  'writeFileAtomic',
  'writeFilesAtomic',
  'writeJsonAtomic',
  'writeJsonAtomicSync',
  'readJsonIfExists',
  'processAlive',
  'describeProcess',
  'recordedProcessRuns',
];

describe('the public surface', () => {
  it('exports none of the internal helpers, from either entry', () => {
    for (const entry of [main, nodeEntry]) expect(INTERNAL.filter((name) => name in entry)).toEqual([]);
  });

  it('exports what users build with: layers, ops, augmentations, training, data and, from /node, files', () => {
    for (const name of ['Conv', 'ConvGroup', 'DiscreteAction', 'simulateDiscreteAction', 'batchFlipLR', 'fitWhitening', 'Trainer', 'SGD']) {
      expect(typeof (main as Record<string, unknown>)[name], name).toBe('function');
    }
    for (const name of ['fileHandler', 'loadCifar10', 'writeCheckpointFiles', 'readCheckpointFiles', 'installNodeWebGPU']) {
      expect(typeof (nodeEntry as Record<string, unknown>)[name], name).toBe('function');
      expect(name in main, `${name} stays out of the browser-safe entry`).toBe(false);
    }
  });

  it('the /node entry holds everything of the main entry, as the same objects', () => {
    const differ = Object.keys(main).filter(
      (name) => name !== 'initBackend' && (nodeEntry as Record<string, unknown>)[name] !== (main as Record<string, unknown>)[name],
    );
    expect(differ).toEqual([]);
  });
});
