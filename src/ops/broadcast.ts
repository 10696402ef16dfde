// broadcastLike lives beside the backend (the library's Sum and Mean gradients use it); the ops use it from here.
export { broadcastLike } from '../backend/broadcast.js';
