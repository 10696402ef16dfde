import { defineConfig } from 'tsup';

export default defineConfig({
  // cifar10-cli is the package bin: the CIFAR-10 example's command line (train, evaluate).
  entry: { index: 'src/index.ts', node: 'src/node.ts', 'cifar10-cli': 'examples/cifar10/cli.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  // One shared chunk per format, so '.' and './node' never hold two copies of a module's state or layer registrations.
  splitting: true,
  target: 'es2022',
  // import.meta.url (wasm threads' worker path) in the CommonJS build too.
  shims: true,
  // Peers stay external so a user's single copy of tfjs is the one our kernels and layers register with.
  external: [/^@tensorflow\//, 'webgpu'],
});
