// `npm run train -- [flags]`: the same as `tfjs-dataflow-cifar10 train [flags]`.
import { main } from './main.js';

main(['train', ...process.argv.slice(2)]).then((code) => process.exit(code));
