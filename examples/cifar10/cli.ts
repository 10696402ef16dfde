#!/usr/bin/env node
// The package bin (tfjs-dataflow-cifar10): `train` or `evaluate`; see --help.
import { exitWith } from './exit.js';
import { main } from './main.js';

// Explicit exit: backend worker threads would otherwise keep the process alive.
main(process.argv.slice(2)).then(exitWith);
