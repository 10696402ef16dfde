import * as tf from '@tensorflow/tfjs-core';
import type { EpochPlan } from '../augment/plan.js';
import { DECODE_IMAGES, type DecodeImagesAttrs } from '../backend/kernels/names.js';

/**
 * A set of 8-bit images kept on the device at one byte per value (tfjs has no uint8 dtype, so four
 * bytes are packed into each int32), decoded per batch into the float32 images the float pipeline
 * holds: normalised per channel, reflect-padded by `pad`, then cropped, mirrored and cutmixed as an
 * epoch's plan says ({@link decodePlanRows}), by one kernel (DataflowDecodeImages). A set too large for
 * one WebGPU binding is split into parts.
 *
 * @remarks
 * The kernel decides nothing: every crop, flip and cutmix comes from the plan's rows, drawn once per
 * epoch for both paths (src/augment/plan.ts).
 * `shape` is the shape the decoded set would have (`[n, h + 2 pad, w + 2 pad, C]`), so code that
 * checks image shapes works with either form. The normalised value of each byte comes from a table
 * built on the host with the float pipeline's float32 arithmetic (`(v / 255 - mean) / std`, each
 * step rounded to float32 as the cpu and wasm kernels round it), so decoded images equal that
 * pipeline's bit for bit on cpu and wasm; on WebGPU they equal cpu's (the float pipeline's own
 * WebGPU division may round differently in the last place).
 */
export class CompactImages {
  /** Always 4, as a decoded NHWC set's. */
  readonly rank = 4;
  /** The shape the decoded set would have, `[count, height + 2 pad, width + 2 pad, channels]`. */
  readonly shape: [number, number, number, number];
  /** Images in every part but the last. */
  readonly perPart: number;
  private disposedFlag = false;

  /** Use {@link compactImages}. @internal */
  constructor(
    /** int32 [images, words] per part. */
    readonly parts: readonly tf.Tensor2D[],
    /** float32 [C * 256]: normalised value of byte v in channel c at c * 256 + v. */
    readonly lut: tf.Tensor1D,
    /** Number of images. */
    readonly count: number,
    /** Stored (unpadded) height, width and channels. */
    readonly height: number,
    /** Stored (unpadded) width. */
    readonly width: number,
    /** Channels per pixel. */
    readonly channels: number,
    /** Reflect padding of the decoded images on every side. */
    readonly pad: number,
  ) {
    this.shape = [count, height + 2 * pad, width + 2 * pad, channels];
    this.perPart = parts[0]!.shape[0];
  }

  /** Device bytes held: the packed images and the lookup table. */
  get bytes(): number {
    return this.parts.reduce((s, p) => s + p.size * 4, 0) + this.lut.size * 4;
  }

  /** Whether {@link CompactImages.dispose} has run. */
  get isDisposed(): boolean {
    return this.disposedFlag;
  }

  /** Frees the device memory; a second call does nothing. */
  dispose(): void {
    if (this.disposedFlag) return;
    this.disposedFlag = true;
    tf.dispose([...this.parts, this.lut]);
  }

  /**
   * Decodes `plan` into float32 [B, size, size, C]: per output image a row of int32 [B, 4] (image index,
   * top, left, flip), the window at (top, left) of the padded image, mirrored where flip is 1; with
   * `mixSize`, rows of [B, 10] that add a cutmix partner's four and the pasted square's top-left corner
   * (DECODE_PLAN_COLUMNS), the `mixSize` square there taken from the partner's window instead.
   */
  decode(plan: tf.Tensor2D, size: number, mixSize = 0): tf.Tensor4D {
    if (this.disposedFlag) throw new Error('CompactImages: the set is disposed');
    const [, paddedHeight, paddedWidth] = this.shape;
    if (!(Number.isInteger(size) && size >= 1 && size <= Math.min(paddedHeight, paddedWidth))) {
      throw new Error(`CompactImages.decode: size must be an integer in [1, ${Math.min(paddedHeight, paddedWidth)}], got ${size}`);
    }
    if (!(Number.isInteger(mixSize) && mixSize >= 0 && mixSize <= size)) {
      throw new Error(`CompactImages.decode: mixSize must be an integer in [0, ${size}], got ${mixSize}`);
    }
    const attrs: DecodeImagesAttrs = {
      parts: this.parts.length,
      perPart: this.perPart,
      height: this.height,
      width: this.width,
      channels: this.channels,
      pad: this.pad,
      size,
      mixSize,
    };
    if (tf.getKernel(DECODE_IMAGES, tf.getBackend()) == null) {
      throw new Error(
        `CompactImages.decode: the '${tf.getBackend()}' backend has no ${DECODE_IMAGES} kernel (initBackend installs it on cpu, wasm and webgpu); ` +
          'start the backend with initBackend, or keep the images as float32 (toBackend instead of toCompactBackend)',
      );
    }
    const inputs: tf.NamedTensorMap = { plan, lut: this.lut };
    this.parts.forEach((p, k) => {
      inputs[`p${k}`] = p;
    });
    return tf.engine().runKernel(DECODE_IMAGES, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
  }

  /**
   * The images at `indices` (int32 [B]), a `size` window at offset (`offset`, `offset`) of the
   * padded images, unmirrored: `gather(idx)` is the float pipeline's `tf.gather(images, idx)`,
   * `gather(idx, pad, h)` its unpadded images.
   */
  gather(indices: tf.Tensor1D, offset = 0, size = this.shape[1]): tf.Tensor4D {
    return tf.tidy(() => {
      const n = indices.shape[0];
      const at = tf.fill([n], offset, 'int32');
      const plan = tf.stack([tf.cast(indices, 'int32'), at, at, tf.zeros([n], 'int32')], 1) as tf.Tensor2D;
      return this.decode(plan, size);
    });
  }

  /** Images `start` .. `start + count - 1`, as `gather` of that range. */
  slice(start: number, count: number, offset = 0, size = this.shape[1]): tf.Tensor4D {
    return tf.tidy(() => this.gather(tf.range(start, start + count, 1, 'int32') as tf.Tensor1D, offset, size));
  }
}

/**
 * An epoch's plan (src/augment/plan.ts) as the decode kernel's rows, one per image of the set (int32
 * [n, 4], or [n, 10] with cutmix: DECODE_PLAN_COLUMNS): each image's window and flip, and with cutmix its
 * partner's and the square's corner. A batch decodes `tf.gather(rows, batchIndices)` with
 * `CompactImages.decode(rows, plan.size, plan.cutmix?.size ?? 0)`: the float path's batch bit for bit.
 */
export function decodePlanRows(plan: EpochPlan, n: number): tf.Tensor2D {
  return tf.tidy(() => {
    const zero = tf.zeros([n], 'int32');
    const own = tf.stack(
      [tf.range(0, n, 1, 'int32'), plan.crop?.top ?? zero, plan.crop?.left ?? zero, plan.flip ? tf.cast(plan.flip, 'int32') : zero],
      1,
    ) as tf.Tensor2D;
    if (!plan.cutmix) return own;
    const { partner, top, left } = plan.cutmix;
    return tf.concat([own, tf.gather(own, partner), tf.stack([top, left], 1)], 1) as tf.Tensor2D;
  });
}

/** Whether `x` is a {@link CompactImages} set. */
export function isCompactImages(x: unknown): x is CompactImages {
  return x instanceof CompactImages;
}

/** Options of {@link compactImages}. */
export interface CompactImagesOptions {
  /** Per-channel mean and std of the [0, 1]-scaled images; the set is decoded as `(v / 255 - mean) / std`. */
  mean: readonly number[];
  /** Per-channel std of the [0, 1]-scaled images (see `mean`). */
  std: readonly number[];
  /** Reflect padding of the decoded images on every side; default 0. */
  pad?: number;
  /** Most bytes one part may hold; default: the WebGPU device's maxStorageBufferBindingSize, else 1 GiB. */
  maxPartBytes?: number;
}

/**
 * The byte table of the float pipeline: `(fround(v / 255) - mean) / std`, each step rounded to
 * float32, as tfjs's cpu kernels round (and wasm's compute) the float pipeline's sub and div.
 */
export function normalisationTable(mean: readonly number[], std: readonly number[]): Float32Array {
  const lut = new Float32Array(mean.length * 256);
  for (let c = 0; c < mean.length; c++) {
    const m = Math.fround(mean[c]!);
    const s = Math.fround(std[c]!);
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = Math.fround(Math.fround(Math.fround(v / 255) - m) / s);
  }
  return lut;
}

function webgpuLimits(): { binding?: number; buffers?: number } {
  if (tf.getBackend() !== 'webgpu') return {};
  const limits = (
    tf.backend() as unknown as { device?: { limits?: { maxStorageBufferBindingSize?: number; maxStorageBuffersPerShaderStage?: number } } }
  ).device?.limits;
  return { binding: limits?.maxStorageBufferBindingSize, buffers: limits?.maxStorageBuffersPerShaderStage };
}

/**
 * Puts 8-bit images on the active backend as a {@link CompactImages} set: `images` holds `count`
 * images of `height x width x channels` bytes, NHWC (channels last). Uploads once; nothing is
 * uploaded when a batch is decoded.
 */
export function compactImages(images: Uint8Array, shape: [number, number, number, number], options: CompactImagesOptions): CompactImages {
  const [count, height, width, channels] = shape;
  const where = 'compactImages';
  if (!shape.every((d) => Number.isInteger(d) && d >= 1))
    throw new Error(`${where}: shape must be four positive integers [count, height, width, channels], got [${shape}]`);
  const imageBytes = height * width * channels;
  if (imageBytes % 4 !== 0)
    throw new Error(`${where}: an image's ${imageBytes} bytes must be a multiple of 4 (they are packed four to an int32)`);
  if (!(images instanceof Uint8Array) || images.length !== count * imageBytes) {
    throw new Error(
      `${where}: expected ${count * imageBytes} bytes (${count} images of ${height}x${width}x${channels}), got ${images?.length ?? String(images)}`,
    );
  }
  const { mean, std, pad = 0 } = options;
  if (mean?.length !== channels || std?.length !== channels || ![...mean, ...std].every(Number.isFinite) || !std.every((s) => s > 0)) {
    throw new Error(`${where}: mean and std must be ${channels} finite numbers each (std > 0), got mean [${mean}] and std [${std}]`);
  }
  if (!(Number.isInteger(pad) && pad >= 0 && pad < Math.min(height, width))) {
    throw new Error(
      `${where}: pad must be an integer in 0..${Math.min(height, width) - 1} (reflect padding needs pad < image size), got ${pad}`,
    );
  }
  const limits = webgpuLimits();
  const maxPartBytes = options.maxPartBytes ?? limits.binding ?? 2 ** 30;
  const perPart = Math.min(count, Math.floor(maxPartBytes / imageBytes));
  if (perPart < 1) throw new Error(`${where}: one image (${imageBytes} bytes) exceeds the ${maxPartBytes} bytes a part may hold`);
  const partCount = Math.ceil(count / perPart);
  // The decode binds the output, the plan, the table and every part.
  const maxParts = (limits.buffers ?? Infinity) - 3;
  if (partCount > maxParts) {
    throw new Error(
      `${where}: ${count} images of ${imageBytes} bytes need ${partCount} buffers of at most ${maxPartBytes} bytes (this WebGPU device's ` +
        `maxStorageBufferBindingSize), but a shader here binds at most ${maxParts} of them (maxStorageBuffersPerShaderStage ${limits.buffers}); ` +
        `use at most ${maxParts * perPart} images or a device with larger limits`,
    );
  }
  const aligned = images.byteOffset % 4 === 0 ? images : images.slice();
  const words = new Int32Array(aligned.buffer, aligned.byteOffset, aligned.length / 4);
  const parts: tf.Tensor2D[] = [];
  try {
    for (let k = 0; k < partCount; k++) {
      const n = Math.min(perPart, count - k * perPart);
      const start = k * perPart * (imageBytes / 4);
      parts.push(tf.tensor2d(words.subarray(start, start + n * (imageBytes / 4)), [n, imageBytes / 4], 'int32'));
    }
    const lut = tf.tensor1d(normalisationTable(mean, std), 'float32');
    return new CompactImages(parts, lut, count, height, width, channels, pad);
  } catch (e) {
    tf.dispose(parts);
    throw e;
  }
}
