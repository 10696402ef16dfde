// WebGPU errors that no error scope caught, turned into exceptions where results are read.

/** Errors of the library's WebGPU devices that no error scope caught, oldest first, not yet reported. */
const deviceErrors: string[] = [];

/**
 * WebGPU reports a failed command (a buffer bound past `maxStorageBufferBindingSize`, an out-of-memory) as an
 * event, not an exception, and tfjs-backend-webgpu listens to none: the kernel's output is then garbage, silently.
 * The library's devices keep those errors for {@link throwIfWebGPUFailed}.
 */
export function watchDeviceErrors(device: GPUDevice): void {
  device.addEventListener('uncapturederror', (event) => {
    if (deviceErrors.length < 10) deviceErrors.push((event as GPUUncapturedErrorEvent).error.message.split('\n')[0]!);
  });
}

/**
 * Throws if a WebGPU command failed since the last call (e.g. a tensor larger than the device binds), naming what
 * failed and `during`; the Trainer and the evaluation call it where they read results back, so that a failed
 * kernel never becomes a silently wrong loss or accuracy. Does nothing on other backends.
 */
export function throwIfWebGPUFailed(during: string): void {
  if (deviceErrors.length === 0) return;
  const errors = deviceErrors.splice(0);
  const binding = errors.find((e) => /larger than the maximum storage buffer binding size/.test(e));
  const hint = binding
    ? ': a tensor is larger than this device binds at once (its maxStorageBufferBindingSize); use smaller batches (a micro-batch, a smaller evaluation batch)'
    : '';
  throw new Error(`WebGPU failed during ${during}${hint}. The device said: ${errors.join(' | ')}`);
}
