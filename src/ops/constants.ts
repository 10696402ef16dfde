// Device scalars live beside the backend (the library's gradients use them); the ops use them from here.
export { deviceScalar, deviceScalarCount, releaseDeviceScalars } from '../backend/device-scalars.js';
