// `npm run train -- [flags]`: the same as `tfjs-dataflow-cifar10 train [flags]`.
import { exitWith } from './exit.js';
import { main, useNpmInvocationDir } from './main.js';

useNpmInvocationDir('train');
main(['train', ...process.argv.slice(2)], undefined, 'npm').then(exitWith);
