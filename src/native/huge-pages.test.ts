/**
 * sharedMemory and adviseHugePages: zeroed shared memory of the size asked, its whole 2 MiB
 * pages advised where the kernel runs transparent huge pages, nothing advised in a view too
 * small to hold one, and the contents never changed by the advice.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { sharedMemory } from './huge-pages.js';
import { syscalls } from './syscalls.js';

const MiB = 1024 * 1024;

/** Whether this kernel backs madvised memory with huge pages (THP "always" or "madvise"). */
function hugePagesOffered(): boolean {
  try {
    return !readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').includes('[never]');
  } catch {
    return false;
  }
}

test('sharedMemory gives zeroed shared memory of the size asked; its whole 2 MiB pages are advised where THP is offered', () => {
  const memory = sharedMemory(6 * MiB + 123);
  assert.ok(memory instanceof SharedArrayBuffer);
  assert.equal(memory.byteLength, 6 * MiB + 123);
  const view = new Uint8Array(memory);
  assert.ok(view.every((byte) => byte === 0), 'zeroed');
  view.fill(7, 0, 4 * MiB);
  const advised = syscalls.adviseHugePages(view);
  if (hugePagesOffered()) {
    assert.ok(advised >= 4 * MiB && advised <= 6 * MiB && advised % (2 * MiB) === 0, `advised ${advised} bytes`);
  } else assert.equal(advised, 0);
  assert.ok(view.subarray(0, 4 * MiB).every((byte) => byte === 7) && view.subarray(4 * MiB).every((byte) => byte === 0), 'the advice changes no byte');
  assert.equal(syscalls.adviseHugePages(new Uint8Array(new SharedArrayBuffer(MiB))), 0, 'a MiB holds no whole huge page');
  assert.equal(sharedMemory(100).byteLength, 100, 'small memory made as usual');
  assert.throws(() => syscalls.adviseHugePages(new Float64Array(4) as unknown as Uint8Array), { code: 'EINVAL' });
});
