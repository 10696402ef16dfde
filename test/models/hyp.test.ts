import { describe, expect, it } from 'vitest';
// The public entry: what an application imports.
import { SEED_HYP, checkHyp, resolveHyp, speedyConvNet, type Hyp, type HypOverrides } from '../../src/index.js';

describe('resolveHyp validates every key', () => {
  it.each([
    [{ opt: { lossBatchSize: 0 } }, 'hyp.opt.lossBatchSize must be a number > 0 (the loss is scaled by lossBatchSize / batchSize), got 0'],
    [{ opt: { batchSize: 12.5 } }, 'hyp.opt.batchSize must be a positive integer, got 12.5'],
    [{ opt: { momentum: 0 } }, 'hyp.opt.momentum must be a number in (0, 1) (Nesterov SGD needs momentum > 0), got 0'],
    [{ opt: { labelSmoothing: 1.5 } }, 'hyp.opt.labelSmoothing must be a number in [0, 1], got 1.5'],
    [{ opt: { nonBiasLr: -1 } }, 'hyp.opt.nonBiasLr must be a number >= 0, got -1'],
    [{ opt: { finalLrRatio: 0 } }, 'hyp.opt.finalLrRatio must be a number > 0, got 0'],
    [{ opt: { percentStart: 1.5 } }, 'hyp.opt.percentStart must be a number in (0, 1), got 1.5'],
    [{ net: { whiteningKernelSize: 0 } }, 'hyp.net.whiteningKernelSize must be a positive integer, got 0'],
    [{ net: { padAmount: -2 } }, 'hyp.net.padAmount must be an integer >= 0, got -2'],
    [{ net: { noiseStd: Number.NaN } }, 'hyp.net.noiseStd must be a number >= 0, got NaN'],
    [
      { net: { baseDepth: '32' } },
      "hyp.net.baseDepth must be an integer in [1, 512] (the last group has 8x as many channels; 512 already makes 4096-channel convs of 600 MB), got '32'",
    ],
    [{ net: { baseDepth: 100_000 } }, 'hyp.net.baseDepth must be an integer in [1, 512]'],
    [
      { misc: { trainEpochs: 0 } },
      "hyp.misc.trainEpochs must be a number in (0, 1000] (the seed trains 12.1; every epoch's schedule is held in memory), got 0",
    ],
    [{ misc: { trainEpochs: 1e8 } }, 'hyp.misc.trainEpochs must be a number in (0, 1000]'],
    [{ misc: { trainEpochs: 1e300 } }, 'hyp.misc.trainEpochs must be a number in (0, 1000]'],
    [{ misc: { ema: { decayBase: 2 } } }, 'hyp.misc.ema.decayBase must be a number in [0, 1], got 2'],
    [{ misc: { ema: { everyNSteps: 0 } } }, 'hyp.misc.ema.everyNSteps must be a positive integer, got 0'],
  ])('refuses %j, naming the key and its range', (overrides, message) => {
    expect(() => resolveHyp(overrides as HypOverrides)).toThrow(message);
  });

  it('refuses unknown keys (with the closest valid one) and overrides that are not objects', () => {
    expect(() => resolveHyp({ net: { baseDeph: 32 } } as never)).toThrow(
      "hyp.net has no key 'baseDeph' (did you mean 'baseDepth'?); valid keys: whiteningKernelSize, whiteningExamples, whiteningChunkSize, " +
        'batchNormMomentum, batchNormEps, cutmixSize, cutmixEpochs, padAmount, baseDepth, noiseStd',
    );
    expect(() => resolveHyp({ optimizer: {} } as never)).toThrow("hyp has no key 'optimizer'; valid keys: opt, net, misc");
    expect(() => resolveHyp({ misc: { ema: { every: 2 } } } as never)).toThrow("hyp.misc.ema has no key 'every'");
    expect(() => resolveHyp('x' as never)).toThrow("hyp must be an object of overrides such as { net: { baseDepth: 32 } }, got string 'x'");
    expect(() => resolveHyp(null as never)).toThrow('hyp must be an object of overrides such as { net: { baseDepth: 32 } }, got null');
    expect(() => resolveHyp({ net: 4 } as never)).toThrow('hyp.net must be an object of overrides (keys: whiteningKernelSize,');
    expect(() => resolveHyp({ misc: { ema: [] } } as never)).toThrow(
      'hyp.misc.ema must be an object of overrides (keys: epochs, decayBase, decayPow, everyNSteps), got an array []',
    );
  });

  it('speedyConvNet refuses a hyp that is not an object or has a typo, instead of building the default net', () => {
    expect(() => speedyConvNet({ hyp: 'x' as never })).toThrow(
      "hyp must be an object of overrides such as { net: { baseDepth: 32 } }, got string 'x'",
    );
    expect(() => speedyConvNet({ hyp: { net: { basedepth: 8 } } as never })).toThrow(
      "hyp.net has no key 'basedepth' (did you mean 'baseDepth'?)",
    );
  });

  it('accepts the seed, in-range values and keys set to undefined (the default)', () => {
    expect(resolveHyp()).toEqual(SEED_HYP);
    const hyp = resolveHyp({
      opt: { momentum: 0.9, labelSmoothing: 0 },
      net: { baseDepth: undefined, cutmixSize: 0 },
      misc: { ema: { epochs: 0 } },
    });
    expect(hyp.opt.momentum).toBe(0.9);
    expect(hyp.net.baseDepth).toBe(SEED_HYP.net.baseDepth);
    expect(hyp.misc.ema.epochs).toBe(0);
  });

  it('refuses, given the image size, every combination the seed crop, cutmix and whitening fit cannot use, naming the key (item 12)', () => {
    const at32 = (net: HypOverrides['net']) => () => resolveHyp({ net }, { imageSize: 32 });
    expect(at32({ padAmount: 0 })).toThrow(
      "hyp.net.padAmount must be at least 1 for the seed's random 32x32 crop (an even crop needs padded images larger than itself), got 0",
    );
    expect(at32({ padAmount: 32 })).toThrow('hyp.net.padAmount must be smaller than the 32x32 images it reflect-pads, got 32');
    expect(at32({ cutmixSize: 32 })).toThrow(
      "hyp.net.cutmixSize 32 does not fit the 32x32 training crops; it must be at most 31 (the seed's square masks need a spare row for an even side; 0 turns cutmix off)",
    );
    expect(at32({ whiteningKernelSize: 33 })).toThrow(
      "hyp.net.whiteningKernelSize must be at most the image side 32 (the whitening conv is a 'valid' convolution of the unpadded images), got 33",
    );
    expect(at32({ whiteningKernelSize: 32, whiteningExamples: 11, whiteningChunkSize: 5 })).toThrow(
      'hyp.net.whiteningKernelSize 32 takes one patch from each 32x32 image, and hyp.net.whiteningExamples 11 in chunks of ' +
        'hyp.net.whiteningChunkSize 5 leaves a chunk of 1 image: a covariance needs at least 2 patches',
    );
    expect(() => resolveHyp({}, { imageSize: 0 })).toThrow("resolveHyp: option 'imageSize' must be a positive integer, got 0");
    // What the same values can use: an odd crop fits its own side, a chunk of two 1-patch images, no image size given.
    expect(resolveHyp({ net: { padAmount: 0, cutmixSize: 33 } }, { imageSize: 33 }).net.padAmount).toBe(0);
    expect(at32({ whiteningKernelSize: 32, whiteningExamples: 12, whiteningChunkSize: 5 })).not.toThrow();
    expect(resolveHyp({ net: { padAmount: 0 } }).net.padAmount).toBe(0);
    const hyp = structuredClone(resolveHyp());
    hyp.net.cutmixSize = 40;
    expect(() => checkHyp(hyp, { imageSize: 32 })).toThrow('hyp.net.cutmixSize 40 does not fit the 32x32 training crops');
  });

  it('checkHyp checks a complete Hyp changed after resolveHyp', () => {
    const hyp: Hyp = structuredClone(resolveHyp());
    expect(() => checkHyp(hyp)).not.toThrow();
    hyp.opt.lossBatchSize = 0;
    expect(() => checkHyp(hyp)).toThrow('hyp.opt.lossBatchSize must be a number > 0');
    const missing = structuredClone(resolveHyp()) as unknown as { misc: Record<string, unknown> };
    delete missing.misc['evalBatchSize'];
    expect(() => checkHyp(missing as unknown as Hyp)).toThrow(/^hyp.misc.evalBatchSize must be a positive integer, got undefined$/);
  });
});
