import {
  getGradient,
  getKernel,
  registerGradient,
  registerKernel,
  unregisterGradient,
  unregisterKernel,
  type GradConfig,
  type KernelConfig,
  type KernelFunc,
} from '@tensorflow/tfjs-core';

/**
 * The one place the library registers kernels and gradients, its own and in place of tfjs's: it keeps
 * each original, so an override can fall back to it and uninstalling restores tfjs exactly.
 */
const originals = new Map<string, Map<string, KernelConfig | null>>();

/** Whether `backendName` runs library kernels now: any, or every one of `kernelNames`. */
export function overridesInstalled(backendName: string, kernelNames?: readonly string[]): boolean {
  const kept = originals.get(backendName);
  if (kept == null) return false;
  return kernelNames == null || kernelNames.every((name) => kept.has(name));
}

/**
 * Registers `overrides` for `backendName` in place of its own kernels, keeping the originals (and
 * their setup functions). Idempotent: a kernel already overridden is left as it is.
 */
export function installOverrides(backendName: string, overrides: Record<string, KernelFunc>): void {
  if (Object.keys(overrides).length === 0) return;
  let kept = originals.get(backendName);
  if (kept == null) originals.set(backendName, (kept = new Map()));
  for (const [kernelName, kernelFunc] of Object.entries(overrides)) {
    if (kept.has(kernelName)) continue;
    const original = getKernel(kernelName, backendName) ?? null;
    kept.set(kernelName, original);
    if (original != null) unregisterKernel(kernelName, backendName);
    const config: KernelConfig = { kernelName, backendName, kernelFunc };
    if (original?.setupFunc) config.setupFunc = original.setupFunc;
    registerKernel(config);
  }
}

/**
 * Puts back the kernels `installOverrides` replaced on `backendName` (and removes ones it added): all
 * of them, or those of `kernelNames`.
 */
export function uninstallOverrides(backendName: string, kernelNames?: readonly string[]): void {
  const kept = originals.get(backendName);
  if (kept == null) return;
  for (const [kernelName, original] of [...kept]) {
    if (kernelNames != null && !kernelNames.includes(kernelName)) continue;
    unregisterKernel(kernelName, backendName);
    if (original != null) registerKernel(original);
    kept.delete(kernelName);
  }
  if (kept.size === 0) originals.delete(backendName);
}

/** The backends with library kernels installed now. */
export function backendsWithOverrides(): string[] {
  return [...originals.keys()];
}

// Gradients are global in tfjs (one per kernel name, for every backend).
const originalGradients = new Map<string, GradConfig | null>();

/** Whether the library's gradients are installed now. */
export function gradientsInstalled(): boolean {
  return originalGradients.size > 0;
}

/** Registers `gradients` in place of tfjs's, keeping those. Idempotent: a gradient already replaced is left as it is. */
export function installGradients(gradients: readonly GradConfig[]): void {
  for (const config of gradients) {
    if (originalGradients.has(config.kernelName)) continue;
    originalGradients.set(config.kernelName, getGradient(config.kernelName) ?? null);
    registerGradient(config);
  }
}

/** Puts back the gradients `installGradients` replaced (and removes ones it added). */
export function uninstallGradients(): void {
  for (const [kernelName, original] of originalGradients) {
    unregisterGradient(kernelName);
    if (original != null) registerGradient(original);
  }
  originalGradients.clear();
}

/**
 * The kernel `kernelName` of `backendName` as the backend registered it: the kept original while
 * the library's override is installed, else the registered one. Throws when there is none.
 */
export function originalKernel(kernelName: string, backendName: string): KernelConfig {
  const kept = originals.get(backendName);
  const kernel = kept?.has(kernelName) ? kept.get(kernelName) : getKernel(kernelName, backendName);
  if (kernel == null) throw new Error(`${backendName} kernel '${kernelName}' is not registered; load the ${backendName} backend first`);
  return kernel;
}
