import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', node: 'src/node.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  // One shared chunk per format, so '.' and './node' never hold two copies of a module's state or layer registrations.
  splitting: true,
  target: 'es2022',
  // Peers stay external so a user's single copy of tfjs is the one our kernels and layers register with.
  external: [/^@tensorflow\//, 'webgpu'],
});
