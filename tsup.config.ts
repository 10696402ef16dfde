import { defineConfig } from 'tsup';

/** The package's two entries, '.' and './node', each as ESM and CommonJS with declarations. */
const library = { index: 'src/index.ts', node: 'src/node.ts' };

export default defineConfig({
  // cifar10-cli is the package bin (the CIFAR-10 example's command line: train, evaluate). Its shebang runs it as
  // ESM, so it is built in the ESM format only, sharing the library's chunks; it has no declarations.
  entry: { ...library, 'cifar10-cli': 'examples/cifar10/cli.ts' },
  format: ['esm', 'cjs'],
  esbuildOptions(options, { format }) {
    if (format === 'cjs') options.entryPoints = library;
  },
  // `npm run build` then restores the shared declaration chunk's export names (tools/build/dts-names.ts).
  dts: { entry: library },
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
