// `npm run evaluate -- --model DIR [flags]`: the same as `tfjs-dataflow-cifar10 evaluate [flags]`.
import { exitWith } from './exit.js';
import { main, useNpmInvocationDir } from './main.js';

useNpmInvocationDir('evaluate');
main(['evaluate', ...process.argv.slice(2)], undefined, 'npm').then(exitWith);
