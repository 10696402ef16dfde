#!/usr/bin/env node
// The package bin (tfjs-dataflow-cifar10): `train` or `evaluate`. Placeholder until the CLI lands.
console.error('tfjs-dataflow-cifar10: the CLI is not built yet');
process.exit(1);
