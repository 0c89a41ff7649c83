import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import { isCofferError } from '../errors/index.js';
import { blockFingerprint, FINGERPRINT_BYTES } from './block-fingerprint.js';
import { CodecPool } from './codec-pool.js';
import { ObjectCodec } from './codec.js';
import { ObjectKind } from './format/envelope.js';
import { FrameSlot } from './frame-slot.js';
import { newMasterKey } from './keys/master-key.js';

const settings = { masterKey: newMasterKey(), compressionLevel: 3 };
const codec = new ObjectCodec(settings);
const pool = new CodecPool(settings, { threads: 2 });
after(() => pool.close());

test('opens into shared memory issued together (one worker task per thread) each land in their buffer; a corrupt one fails alone', async () => {
  const blocks = Array.from({ length: 24 }, (_, i) => (i % 3 === 0 ? Buffer.alloc(256 * 1024, `block ${i} `) : randomBytes(64 * 1024 + i)));
  const sealed = blocks.map((block) => ({ id: codec.idOf(block), blob: codec.seal(block, ObjectKind.chunk, codec.idOf(block)) }));
  const damaged = 7;
  const copy = Buffer.from((sealed[damaged] as { blob: Buffer }).blob);
  copy[copy.length - 1] = (copy[copy.length - 1] ?? 0) ^ 1;
  (sealed[damaged] as { blob: Buffer }).blob = copy;
  const targets = blocks.map((block) => new Uint8Array(new SharedArrayBuffer(block.length)));
  const results = await Promise.allSettled(sealed.map(({ id, blob }, i) => pool.open(blob, { kind: ObjectKind.chunk, name: `chunks/${i}`, id, rehash: true, into: targets[i] as Uint8Array })));
  results.forEach((result, i) => {
    if (i === damaged) {
      assert.equal(result.status, 'rejected');
      assert.ok(result.status === 'rejected' && isCofferError(result.reason, 'E_CORRUPT_OBJECT'), String(result.status === 'rejected' ? result.reason : ''));
      return;
    }
    assert.equal(result.status, 'fulfilled', `object ${i}`);
    assert.deepEqual(result.status === 'fulfilled' && result.value, { length: (blocks[i] as Buffer).length, plaintext: null });
    assert.ok(Buffer.from(targets[i] as Uint8Array).equals(blocks[i] as Buffer), `object ${i}'s bytes`);
  });
});

test('an open into ordinary memory still returns the plaintext', async () => {
  const block = randomBytes(1000);
  const id = codec.idOf(block);
  const opened = await pool.open(codec.seal(block, ObjectKind.chunk, id), { kind: ObjectKind.chunk, name: 'chunks/x', id, rehash: true });
  assert.deepEqual(opened.plaintext, block);
});

/** A sealed frame of `blocks` (FrameSlot's layout, sealed in place by `codec`) and its table. */
function sealedFrame(blocks: readonly Buffer[]): { blob: Buffer; length: number; chunks: { id: Buffer; offset: number; length: number }[] } {
  const slot = new FrameSlot(blocks.length, 2 * 1024 * 1024, 256 * 1024);
  for (const block of blocks) slot.add(codec.idOf(block), block);
  const { length, chunks } = slot.close();
  const sealedLength = codec.sealInto(slot.memory.subarray(0, length), ObjectKind.packFrame, Buffer.alloc(32), slot.memory);
  return { blob: Buffer.from(slot.memory.subarray(0, sealedLength)), length, chunks };
}

test('openFrame: a kept plaintext comes back in memory of its own (moved, not cloned); into a slot only the table crosses; the table names every chunk', async () => {
  const blocks = Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? Buffer.alloc(64 * 1024, `block ${i} `) : randomBytes(64 * 1024)));
  const frame = sealedFrame(blocks);
  const expected = frame.chunks.map((c) => ({ id: c.id, offset: c.offset, length: c.length }));

  const kept = await pool.openFrame(Buffer.from(frame.blob), { name: 'packs/x@0', rehash: true, keep: true });
  const plaintext = kept.plaintext as Buffer;
  assert.equal(kept.length, frame.length);
  assert.equal(plaintext.length, frame.length);
  assert.equal(plaintext.buffer.byteLength, frame.length, 'the plaintext owns its memory: nothing else was carried with it');
  assert.deepEqual(kept.table, expected);
  kept.table.forEach((c, i) => assert.ok(plaintext.subarray(c.offset, c.offset + c.length).equals(blocks[i] as Buffer), `chunk ${i}`));

  const slot = Buffer.from(new SharedArrayBuffer(frame.length + 4096));
  const into = await pool.openFrame(Buffer.from(frame.blob), { name: 'packs/x@0', rehash: false, keep: true, into: slot });
  assert.equal(into.plaintext, null);
  assert.equal(into.length, frame.length);
  assert.deepEqual(into.table, expected);
  into.table.forEach((c, i) => assert.ok(slot.subarray(c.offset, c.offset + c.length).equals(blocks[i] as Buffer), `chunk ${i} in the slot`));

  const damaged = Buffer.from(frame.blob);
  damaged[damaged.length - 1] = (damaged[damaged.length - 1] as number) ^ 1;
  await assert.rejects(pool.openFrame(damaged, { name: 'packs/x@0', rehash: false, keep: true }), (error) => isCofferError(error, 'E_CORRUPT_OBJECT'));
});

test('hash, sealGathered and checkGathered called together answer each call, in any number and size, as the codec does; a corrupt object fails alone', async () => {
  // Small Buffers are views into Node's 8 KiB pool, zero-length and all-zero ones included; one in shared memory leaves alone.
  const blocks = [...Array.from({ length: 37 }, (_, i) => Buffer.from(`file ${i} `.repeat(i))), Buffer.alloc(4096), randomBytes(300 * 1024)];
  const shared = Buffer.from(new SharedArrayBuffer(1000)).fill(7);
  const hashes = await Promise.all([...blocks, shared].map((block) => pool.hash(block)));
  [...blocks, shared].forEach((block, i) => {
    const hash = hashes[i];
    if (block.every((byte) => byte === 0)) assert.deepEqual(hash, { zero: true, id: null }, `block ${i}`);
    else assert.ok(hash?.zero === false && hash.id?.equals(codec.idOf(block)), `block ${i}'s id`);
  });

  const ids = blocks.map((block) => codec.idOf(block));
  const sealed = await Promise.all(blocks.map((block, i) => pool.sealGathered(block, ObjectKind.chunk, ids[i] as Buffer)));
  sealed.forEach((blob, i) => assert.ok(codec.open(blob, ObjectKind.chunk, `chunks/${i}`, ids[i] as Buffer, { rehash: true }).equals(blocks[i] as Buffer), `block ${i} opens back`));

  const damaged = 5;
  const blobs = sealed.map((blob, i) => {
    const copy = Buffer.from(blob);
    if (i === damaged) copy[copy.length - 1] = (copy[copy.length - 1] ?? 0) ^ 1;
    return copy;
  });
  const checks = await Promise.allSettled(blobs.map((blob, i) => pool.checkGathered({ blob, kind: ObjectKind.chunk, name: `chunks/${i}`, id: ids[i] as Buffer })));
  checks.forEach((check, i) => {
    if (i === damaged) assert.ok(check.status === 'rejected' && isCofferError(check.reason, 'E_CORRUPT_OBJECT'), `object ${i}`);
    else assert.equal(check.status, 'fulfilled', `object ${i}`);
  });
});

test('hashSealMany: one task hashes every block and seals those asked, with the id it computed; zero blocks are never sealed', async () => {
  const blocks = [randomBytes(5000), Buffer.alloc(4096), randomBytes(300 * 1024), Buffer.from('small')];
  const results = await pool.hashSealMany(blocks.map((data, i) => ({ data, kind: ObjectKind.chunk, seal: i !== 3 })));
  assert.equal(results.length, blocks.length);
  results.forEach((result, i) => {
    const block = blocks[i] as Buffer;
    if (i === 1) {
      assert.deepEqual(result, { zero: true, id: null, sealed: null });
      return;
    }
    const id = codec.idOf(block);
    assert.equal(result.zero, false);
    assert.ok(result.id?.equals(id), `block ${i}'s id`);
    if (i === 3) assert.equal(result.sealed, null);
    else assert.ok(codec.open(result.sealed as Buffer, ObjectKind.chunk, `chunks/${i}`, id, { rehash: true }).equals(block), `block ${i} opens back`);
  });
});

test('fingerprintHashMany: every block gets its fingerprint; one equal to the expected one is neither hashed nor zero-checked', async () => {
  const key = randomBytes(32);
  const blocks = [randomBytes(4096), Buffer.alloc(4096), randomBytes(4096), randomBytes(1000)];
  const indexes = [10, 11, 12, 900];
  const fingerprints = blocks.map((block, i) => {
    const tag = Buffer.alloc(FINGERPRINT_BYTES);
    blockFingerprint(key, indexes[i] as number, block, tag, 0);
    return tag;
  });
  // Known for blocks 0 and 1 (equal), wrong for 2, none (zero) for 3.
  const expected = Buffer.concat([fingerprints[0] as Buffer, fingerprints[1] as Buffer, randomBytes(16), Buffer.alloc(16)]);
  const data = new Uint8Array(new SharedArrayBuffer(blocks.reduce((sum, b) => sum + b.length, 0)));
  let at = 0;
  for (const block of blocks) {
    data.set(block, at);
    at += block.length;
  }
  const found = await pool.fingerprintHashMany(data, blocks.map((b) => b.length), { key, indexes, expected });
  assert.deepEqual(found.same, [true, true, false, false]);
  assert.deepEqual(found.tags, Buffer.concat(fingerprints));
  assert.deepEqual(found.hashes.slice(0, 2), [null, null]);
  assert.deepEqual(found.hashes[2], { zero: false, id: codec.idOf(blocks[2] as Buffer) });
  assert.deepEqual(found.hashes[3], { zero: false, id: codec.idOf(blocks[3] as Buffer) });
  // The same bytes at another index, or under another key, have another fingerprint.
  const elsewhere = Buffer.alloc(16);
  blockFingerprint(key, 13, blocks[0] as Buffer, elsewhere, 0);
  assert.notDeepEqual(elsewhere, fingerprints[0]);
  blockFingerprint(randomBytes(32), 10, blocks[0] as Buffer, elsewhere, 0);
  assert.notDeepEqual(elsewhere, fingerprints[0]);
});

test('the threads start at the first task, not when the pool is made; a pool that ran nothing closes without starting them', async () => {
  const idle = new CodecPool(settings, { threads: 2 });
  assert.equal(idle.threads, 2, 'the thread count is known before they start (pack writers size their slots by it)');
  assert.equal(idle.started, false);
  await idle.close();
  assert.equal(idle.started, false);

  const lazy = new CodecPool(settings, { threads: 1 });
  try {
    assert.equal(lazy.started, false);
    const block = randomBytes(1000);
    assert.deepEqual(await lazy.sha256(block), createHash('sha256').update(block).digest());
    assert.equal(lazy.started, true);
  } finally {
    await lazy.close();
  }
  await assert.rejects(lazy.sha256(Buffer.from('after close')), /closed/);
  await assert.rejects(lazy.open(Buffer.alloc(64), { kind: ObjectKind.chunk, name: 'chunks/y', id: Buffer.alloc(32), rehash: false, into: new Uint8Array(new SharedArrayBuffer(64)) }), /closed/);
});

test('start() starts the threads ahead of the first task', async () => {
  const early = new CodecPool(settings, { threads: 1 });
  try {
    early.start();
    assert.equal(early.started, true);
  } finally {
    await early.close();
  }
});

test('a pool started before the key (threads loaded meanwhile) works once given it, as one made with the key', async () => {
  const later = new CodecPool({ compressionLevel: 3, masterKey: 'later' }, { threads: 2 });
  try {
    later.start(); // the threads load their code without a key
    await new Promise((resolve) => setTimeout(resolve, 50));
    later.giveKey(settings.masterKey);
    const block = randomBytes(70_000);
    const id = codec.idOf(block);
    assert.deepEqual((await later.hash(block)).id, id);
    const opened = await later.open(codec.seal(block, ObjectKind.chunk, id), { kind: ObjectKind.chunk, name: 'chunks/y', id, rehash: true });
    assert.deepEqual(opened.plaintext, block);
  } finally {
    await later.close();
  }
});

test('an unencrypted pool needs no key: ids are plain SHA-256', async () => {
  const plain = new CodecPool({ compressionLevel: 3, masterKey: null }, { threads: 1 });
  try {
    plain.start();
    const block = randomBytes(5000);
    assert.deepEqual((await plain.hash(block)).id, createHash('sha256').update(block).digest());
  } finally {
    await plain.close();
  }
});
