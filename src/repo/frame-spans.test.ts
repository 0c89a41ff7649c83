import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planReads, type FrameToRead } from './frame-spans.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const packA = Buffer.alloc(32, 0xaa);
const packB = Buffer.alloc(32, 0xbb);
const frame = (pack: Buffer, offset: number, length = 512 * KiB): FrameToRead => ({ pack, frameOffset: offset, frameLength: length });
/** Where each read starts and ends, by pack letter. */
const shape = (reads: FrameToRead[][][]) => reads.map((read) => `${(read[0]?.[0] as FrameToRead).pack === packA ? 'A' : 'B'}:${read.map((span) => span.map((f) => f.frameOffset / KiB).join('+')).join(',')}`);

test('planReads joins spans of one pack across holes up to gapBytes, and no further', () => {
  const spans = [[frame(packA, 0)], [frame(packA, 1 * MiB)], [frame(packA, 2560 * KiB)], [frame(packA, 3 * MiB)]];
  // Holes of 512 KiB, 1 MiB and 0: all within 1 MiB.
  assert.deepEqual(shape(planReads(spans, { gapBytes: MiB, maxBytes: 16 * MiB })), ['A:0,1024,2560,3072']);
  // The 1 MiB hole is more than 768 KiB: two reads.
  assert.deepEqual(shape(planReads(spans, { gapBytes: 768 * KiB, maxBytes: 16 * MiB })), ['A:0,1024', 'A:2560,3072']);
  // No holes at all: only spans that touch.
  assert.deepEqual(shape(planReads(spans, { gapBytes: 0, maxBytes: 16 * MiB })), ['A:0', 'A:1024', 'A:2560,3072']);
});

test('planReads cuts a read before it passes maxBytes and never joins two packs', () => {
  const spans = [[frame(packA, 0), frame(packA, 512 * KiB)], [frame(packA, 1 * MiB), frame(packA, 1536 * KiB)], [frame(packA, 2 * MiB)], [frame(packB, 2560 * KiB)]];
  assert.deepEqual(shape(planReads(spans, { gapBytes: MiB, maxBytes: 2 * MiB })), ['A:0+512,1024+1536', 'A:2048', 'B:2560']);
  // A span larger than maxBytes is still read, alone.
  assert.deepEqual(shape(planReads([[frame(packA, 0, 3 * MiB)], [frame(packA, 3 * MiB)]], { gapBytes: MiB, maxBytes: 2 * MiB })), ['A:0', 'A:3072']);
});
