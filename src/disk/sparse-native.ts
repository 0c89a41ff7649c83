/**
 * The native lseek(2) helpers built from `native/sparse.c` by `npm install` (node-gyp).
 * They give raw images and block devices an allocation map without reading them.
 */
import { createRequire } from 'node:module';

interface SparseBinding {
  /** Next offset >= `offset` holding data, or -1 when only holes follow. */
  seekData(fd: number, offset: number): number;
  /** Next offset >= `offset` starting a hole (end of file counts as one). */
  seekHole(fd: number, offset: number): number;
  /** Size of a file or block device. */
  seekEnd(fd: number): number;
}

// Compiled code lives in dist/src/disk/, the addon in build/Release/ at the project root.
const require = createRequire(import.meta.url);
export const sparse: SparseBinding = require('../../../build/Release/coffer_sparse.node') as SparseBinding;
