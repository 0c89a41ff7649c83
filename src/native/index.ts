/**
 * @module native
 * The few system calls Coffer needs that Node.js does not offer (lseek SEEK_DATA/SEEK_HOLE/
 * SEEK_END, syncfs), and AES-256-GCM decryption into the caller's memory, from a small C
 * addon compiled by `npm install`; what writes past the page cache (O_DIRECT) need
 * (direct-io.ts); positioned writes that write every byte (write-fully.ts); and copies of
 * shared memory at memcpy's speed (copy-bytes.ts); and byte ranges of files copied file to file
 * off the main thread (copy-file-ranges.ts); and `mkdir -p` without Node's endless loop where
 * mkdir answers ENOENT (make-folders.ts).
 */
export { syscalls } from './syscalls.js';
export { aead } from './aead.js';
export { DIRECT_ALIGNMENT, AlignedBuffers, alignedSharedBuffer, isAlignedInMemory, takesDirectWrites } from './direct-io.js';
export { writeFully, writeFullyAt, writeFullySync } from './write-fully.js';
export { copyBytes, fillZeros } from './copy-bytes.js';
export { sharedMemory } from './huge-pages.js';
export { copyFileRanges, type CopiedRanges, type CopyRangesError, type FileRange } from './copy-file-ranges.js';
export { makeFolders, makeFoldersSync } from './make-folders.js';
