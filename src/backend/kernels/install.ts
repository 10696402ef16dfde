import { getKernel, registerKernel, unregisterKernel, type KernelConfig, type KernelFunc } from '@tensorflow/tfjs-core';

/**
 * The one place the library replaces kernels a backend registered: it keeps each original, so an
 * override can fall back to it and `uninstallOverrides` restores the backend exactly.
 */
const originals = new Map<string, Map<string, KernelConfig | null>>();

/** Whether `backendName` runs the library's overrides now. */
export function overridesInstalled(backendName: string): boolean {
  return originals.has(backendName);
}

/**
 * Registers `overrides` for `backendName` in place of its own kernels, keeping the originals (and
 * their setup functions). Idempotent: a kernel already overridden is left as it is.
 */
export function installOverrides(backendName: string, overrides: Record<string, KernelFunc>): void {
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

/** Puts back the kernels `installOverrides` replaced on `backendName` (and removes ones it added). */
export function uninstallOverrides(backendName: string): void {
  const kept = originals.get(backendName);
  if (kept == null) return;
  for (const [kernelName, original] of kept) {
    unregisterKernel(kernelName, backendName);
    if (original != null) registerKernel(original);
  }
  originals.delete(backendName);
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
