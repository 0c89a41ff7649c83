/**
 * @module native
 * The few system calls Coffer needs that Node.js does not offer (lseek SEEK_DATA/SEEK_HOLE/
 * SEEK_END, syncfs), from a small C addon compiled by `npm install`.
 */
export { syscalls } from './syscalls.js';
