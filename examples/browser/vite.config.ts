// Vite config of the browser example: `npm run browser:dev` serves it, `npm run browser:build` bundles it.
import { createReadStream, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');
const CIFAR10_NAMES = /^(data_batch_[1-5]|test_batch)\.bin$/;
const CIFAR100_NAMES = /^(train\.bin|test\.bin|fine_label_names\.txt|coarse_label_names\.txt)$/;

/**
 * Serves the CIFAR-10 binary files of `dir` (env CIFAR10_DIR) at /cifar10/, in dev and preview,
 * so `?data=/cifar10/` trains on a local copy without picking files; likewise CIFAR-100's files of
 * CIFAR100_DIR at /cifar100/ (`?data=/cifar100/&dataset=cifar100`). Only the release's files
 * are served; nothing else of the directory is exposed.
 */
function serveDataset(mount: '/cifar10' | '/cifar100', envName: string, names: RegExp, dir: string | undefined): Plugin {
  const handler = (req: IncomingMessage, res: ServerResponse, next: () => void) => {
    const name = decodeURIComponent((req.url ?? '/').split('?')[0]!.replace(/^\//, ''));
    if (!dir || !names.test(name)) return next();
    const file = path.join(dir, name);
    let size: number;
    try {
      size = statSync(file).size;
    } catch {
      res.statusCode = 404;
      res.end(`${name} is not in ${envName}=${dir}`);
      return;
    }
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Content-Length', String(size));
    if (req.method === 'HEAD') return void res.end();
    createReadStream(file).pipe(res);
  };
  return {
    name: `tfjs-dataflow${mount}-dir`,
    configureServer: (server) => void server.middlewares.use(mount, handler),
    configurePreviewServer: (server) => void server.middlewares.use(mount, handler),
  };
}

/**
 * Cross-origin isolation: without these two headers a page has no SharedArrayBuffer, and tfjs-backend-wasm
 * falls back to its single-threaded build. Sent by the dev and preview servers; a host serving the built
 * site must send them too (see README.md).
 */
export const CROSS_ORIGIN_ISOLATION = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  root: here,
  // The page imports the library by its package name, as a user would; here that is the source.
  resolve: { alias: [{ find: /^tfjs-dataflow$/, replacement: path.join(repoRoot, 'src/index.ts') }] },
  server: { host: '127.0.0.1', fs: { allow: [repoRoot] }, headers: CROSS_ORIGIN_ISOLATION },
  preview: { host: '127.0.0.1', headers: CROSS_ORIGIN_ISOLATION },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 4096,
    // Whitespace only: tfjs-backend-wasm starts its threads from its module factory's source text
    // (factory.toString()), which must still run on its own; renamed or compressed, it refers to names
    // of the bundle the workers do not have ("e is not defined", "_scriptDir is not defined").
    rolldownOptions: { output: { minify: { compress: false, mangle: false, codegen: true } } },
  },
  plugins: [
    serveDataset('/cifar10', 'CIFAR10_DIR', CIFAR10_NAMES, process.env['CIFAR10_DIR']),
    serveDataset('/cifar100', 'CIFAR100_DIR', CIFAR100_NAMES, process.env['CIFAR100_DIR']),
  ],
});
