/**
 * `verify --read-data` on format 2 reads adjacent frames of a pack as one span and opens them
 * in one worker task (verify-packs.ts): damage must still be named down to the frame it is
 * in — a flipped byte, a frame whose chunk does not match its id, a truncated pack (checked
 * again frame by frame), a missing pack — and nothing else reported.
 */
import assert from 'node:assert/strict';
import { open, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { backupVm } from '../backup/index.js';
import { openImageSource } from '../source/index.js';
import { makeTempDir, seededBytes } from '../testing/index.js';
import { LocalBackend } from './backend/local-backend.js';
import { SEAL_OVERHEAD } from './codec.js';
import { decodeLocatedEntry, type ChunkLocation } from './format/located-entry.js';
import { initRepository, openRepository, type Repository } from './repository.js';
import { listSnapshots } from './snapshots.js';
import { frameSpans } from './verify-packs.js';
import { verifyRepository, type VerifyReport } from './verify.js';
import { walkBlocks } from './walk.js';

const KiB = 1024;
const BLOCK = 64 * KiB;
const BLOCKS = 40; // 5 frames of 8 blocks, one pack: one span
const dirs: { remove(): Promise<void> }[] = [];
after(async () => {
  for (const dir of dirs) await dir.remove();
});

/** A format 2 repository holding one backup of a 40-block disk; `damage` changes it, then verify runs. */
async function verifyAfter(damage: (repo: Repository, frames: ChunkLocation[], pack: string) => Promise<void>): Promise<{ report: VerifyReport; rangesOf: (frame: number) => { start: number; end: number }[] }> {
  const work = await makeTempDir('coffer-verify-packs');
  dirs.push(work);
  const root = join(work.path, 'repo');
  const backend = new LocalBackend(root);
  await initRepository(backend, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: BLOCK, format: 2 });
  const disk = join(work.path, 'disk.raw');
  await writeFile(disk, seededBytes(7, BLOCKS * BLOCK));
  const repo = await openRepository(backend, { passphrase: 'pw', threads: 2 });
  try {
    const source = await openImageSource('vm', [disk]);
    await backupVm(repo, source).finally(() => source.close());
    const byOffset = new Map<number, ChunkLocation>();
    const blocksOf = new Map<number, number[]>(); // frame offset → disk offsets of its blocks
    await walkBlocks(
      repo,
      await listSnapshots(repo),
      (visit) => {
        const location = decodeLocatedEntry(visit.located as Buffer, 'test');
        byOffset.set(location.frameOffset, location);
        blocksOf.set(location.frameOffset, [...(blocksOf.get(location.frameOffset) ?? []), visit.offset]);
      },
      () => assert.fail('no index page is damaged'),
    );
    const frames = [...byOffset.values()].sort((a, b) => a.frameOffset - b.frameOffset);
    assert.equal(frames.length, BLOCKS / 8);
    const packs = (await readdir(join(root, 'packs'), { recursive: true })).filter((name) => /[0-9a-f]{64}$/.test(name));
    assert.equal(packs.length, 1);
    await damage(repo, frames, join(root, 'packs', packs[0] as string));
    await backend.close();
    const report = await verifyRepository(repo, { readData: true, now: () => new Date() });
    // The disk ranges of frame i's blocks, merged (as verify reports them).
    const rangesOf = (i: number) => {
      const ranges: { start: number; end: number }[] = [];
      for (const start of [...(blocksOf.get((frames[i] as ChunkLocation).frameOffset) ?? [])].sort((a, b) => a - b)) {
        const last = ranges.at(-1);
        if (last !== undefined && last.end === start) last.end = start + BLOCK;
        else ranges.push({ start, end: start + BLOCK });
      }
      return ranges;
    };
    return { report, rangesOf };
  } finally {
    await repo.close();
  }
}

test('frameSpans: adjacent frames of a pack, in order, up to the byte limit; a gap or another pack starts a new span', () => {
  const f = (pack: string, offset: number, length: number) => ({ pack, offset, length });
  const spans = frameSpans([f('b', 8, 10), f('a', 18, 10), f('a', 8, 10), f('a', 28, 10), f('a', 40, 10), f('a', 50, 30), f('a', 80, 5)], 40);
  assert.deepEqual(
    spans.map((span) => span.map((frame) => `${frame.pack}@${frame.offset}`)),
    [['a@8', 'a@18', 'a@28'], ['a@40', 'a@50'], ['a@80'], ['b@8']],
  );
  assert.deepEqual(frameSpans([f('a', 8, 100)], 40).length, 1); // a frame larger than the limit is a span alone
});

test('an intact pack: every chunk read in one span, nothing damaged', async () => {
  const { report } = await verifyAfter(async () => undefined);
  assert.deepEqual(report.damaged, []);
  assert.equal(report.chunksRead, BLOCKS);
});

test('a flipped byte in the third frame of a span: only that frame\'s 8 chunks are corrupt', async () => {
  const { report, rangesOf } = await verifyAfter(async (_repo, frames, pack) => {
    const frame = frames[2] as ChunkLocation;
    const handle = await open(pack, 'r+');
    const byte = Buffer.alloc(1);
    const at = frame.frameOffset + Math.floor(frame.frameLength / 2);
    await handle.read(byte, 0, 1, at);
    byte[0] = (byte[0] as number) ^ 0x01;
    await handle.write(byte, 0, 1, at);
    await handle.close();
  });
  assert.equal(report.damaged.length, 8);
  assert.ok(report.damaged.every((d) => d.kind === 'chunk' && d.problem === 'corrupt' && /authentication failed/.test(d.message)), JSON.stringify(report.damaged[0]));
  assert.deepEqual(report.affected.map((a) => a.ranges), [rangesOf(2)]);
});

test('a frame that authenticates but whose chunk does not match its id (resealed with the key): its chunks are corrupt', async () => {
  const { report, rangesOf } = await verifyAfter(async (repo, frames, pack) => {
    const frame = frames[1] as ChunkLocation;
    const handle = await open(pack, 'r+');
    const blob = Buffer.alloc(frame.frameLength);
    await handle.read(blob, 0, blob.length, frame.frameOffset);
    const { plaintext } = await repo.pool.openFrame(blob, { name: 'test', rehash: false, keep: true });
    const slot = new Uint8Array(new SharedArrayBuffer((plaintext as Buffer).length + SEAL_OVERHEAD));
    slot.set(plaintext as Buffer);
    slot[slot.length - SEAL_OVERHEAD - 1] = (slot[slot.length - SEAL_OVERHEAD - 1] as number) ^ 0x01; // the last chunk's last byte
    const length = await repo.pool.sealFrame(slot, (plaintext as Buffer).length);
    assert.equal(length, frame.frameLength); // random blocks are stored raw: same size
    await handle.write(slot, 0, length, frame.frameOffset);
    await handle.close();
  });
  assert.equal(report.damaged.length, 8);
  assert.ok(report.damaged.every((d) => d.problem === 'corrupt' && /does not match its content/.test(d.message)), JSON.stringify(report.damaged[0]));
  assert.deepEqual(report.affected.map((a) => a.ranges), [rangesOf(1)]);
});

test('a pack cut short inside its last frame: the span is read again frame by frame, only the last frame is damaged', async () => {
  const { report, rangesOf } = await verifyAfter(async (_repo, frames, pack) => {
    const last = frames.at(-1) as ChunkLocation;
    await truncate(pack, last.frameOffset + 100);
  });
  const chunks = report.damaged.filter((d) => d.kind === 'chunk');
  assert.equal(chunks.length, 8);
  assert.ok(chunks.every((d) => d.problem === 'corrupt'), JSON.stringify(chunks[0]));
  // Its trailer went with its end: the pack is reported too, and names no disk range.
  assert.deepEqual(report.damaged.filter((d) => d.kind === 'pack').map((d) => d.problem), ['corrupt']);
  assert.deepEqual(report.affected.map((a) => a.ranges), [rangesOf(BLOCKS / 8 - 1)]);
});

test('a missing pack: every chunk is missing', async () => {
  const { report } = await verifyAfter(async (_repo, _frames, pack) => {
    await rm(pack);
  });
  assert.equal(report.damaged.length, BLOCKS);
  assert.ok(report.damaged.every((d) => d.kind === 'chunk' && d.problem === 'missing'), JSON.stringify(report.damaged[0]));
  assert.deepEqual(report.affected.map((a) => a.ranges), [[{ start: 0, end: BLOCKS * BLOCK }]]);
});

for (const [what, offsetFromEnd] of [
  ['the end magic (last byte)', 1],
  ['the trailer', 20],
] as const) {
  test(`a flipped byte in ${what}: every chunk still reads, the pack is reported, no disk range is lost`, async () => {
    const { report } = await verifyAfter(async (_repo, _frames, pack) => {
      const handle = await open(pack, 'r+');
      const size = (await handle.stat()).size;
      const byte = Buffer.alloc(1);
      await handle.read(byte, 0, 1, size - offsetFromEnd);
      byte[0] = (byte[0] as number) ^ 0x40;
      await handle.write(byte, 0, 1, size - offsetFromEnd);
      await handle.close();
    });
    assert.equal(report.chunksRead, BLOCKS);
    assert.equal(report.damaged.length, 1, JSON.stringify(report.damaged));
    const [damage] = report.damaged;
    assert.equal(damage?.kind, 'pack');
    assert.equal(damage?.problem, 'corrupt');
    assert.match(damage?.message ?? '', /still restore/);
    assert.deepEqual(report.affected, []);
  });
}
