import { syscalls } from './syscalls.js';

/** A transparent huge page on x86-64 and arm64 (4 KiB base pages). */
const HUGE_PAGE_BYTES = 2 * 1024 * 1024;

/**
 * A new SharedArrayBuffer of `bytes`, zeroed as always, whose whole 2 MiB pages are asked to
 * be backed by transparent huge pages (native/huge-pages.c) before anything is written to it.
 * Coffer's large shared buffers (packs being filled, frame slots, read windows) are written
 * whole and reused; in a VM whose page faults are dear their first writes cost 4.4 ms a MiB
 * in 4 KiB pages against 0.35-0.6 in huge pages (measured on these machines, 2026-11-28).
 * Smaller buffers, which hold no aligned 2 MiB, are made as usual.
 */
export function sharedMemory(bytes: number): SharedArrayBuffer {
  const memory = new SharedArrayBuffer(bytes);
  if (bytes >= 2 * HUGE_PAGE_BYTES) syscalls.adviseHugePages(new Uint8Array(memory));
  return memory;
}
