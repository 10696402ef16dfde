// tfjs-core registers no gradients by itself; tfjs-layers' entry registers all of them
// (into the registry shared through globalThis), in Node and in bundlers alike.
import '@tensorflow/tfjs-layers';
