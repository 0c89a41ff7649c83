/**
 * One volume written by VolumeWriter and read back by readVolume, in memory: the layout
 * arithmetic (offsets, capacity, fixed records) and the reader's refusals. GNU tar reads the
 * same volumes in src/cli/tape.integ.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { pack as tarPack } from 'tar-stream';
import { CofferError } from '../../errors/index.js';
import { decodeTapeIndex, decodeTapeLabel, encodeTapeLabel, memberLength, TAR_END_BYTES, type TapeLabel } from './tape-format.js';
import { readVolume, type VolumeMember } from './volume-reader.js';
import type { VolumeSink, VolumeSource } from './volume-sink.js';
import { VolumeWriter } from './volume-writer.js';

const label = (recordSize = 4096, sequence = 1): TapeLabel => ({
  format: 'coffer-tape', version: 1, tapeSet: 'ab'.repeat(16), sequence, repository: 'cd'.repeat(16), created: '2026-11-26T00:00:00.000Z', recordSize,
});

/** A sink that keeps the records, and checks each is one whole record. */
function memorySink(recordSize: number): VolumeSink & { bytes: () => Buffer; closed: boolean } {
  const records: Buffer[] = [];
  return {
    name: 'memory',
    closed: false,
    async writeRecord(record) {
      assert.equal(record.length, recordSize);
      records.push(Buffer.from(record));
    },
    async close() {
      this.closed = true;
    },
    bytes: () => Buffer.concat(records),
  };
}
const source = (bytes: Buffer, name = 'memory'): VolumeSource => ({ name, open: () => Readable.from([bytes]) });
const objectName = (i: number) => { const hex = createHash('sha256').update(String(i)).digest('hex'); return `chunks/${hex.slice(0, 2)}/${hex}`; };

async function writeVolume(objects: Buffer[], capacity = Number.MAX_SAFE_INTEGER, recordSize = 4096): Promise<{ bytes: Buffer; written: number; reported: number }> {
  const sink = memorySink(recordSize);
  const writer = await VolumeWriter.start(sink, label(recordSize), ['ef'.repeat(32)], capacity);
  let written = 0;
  for (const [i, data] of objects.entries()) {
    if (!writer.fits(objectName(i), data.length)) break;
    await writer.add(objectName(i), data);
    written++;
  }
  const { bytes } = await writer.finish(true);
  assert.equal(sink.closed, true);
  return { bytes: sink.bytes(), written, reported: bytes };
}

test('a volume reads back: every member, in order, with the offsets and hashes its index lists', async () => {
  const objects = [Buffer.alloc(0), Buffer.from('x'), Buffer.alloc(511, 1), Buffer.alloc(512, 2), Buffer.alloc(513, 3), Buffer.alloc(70_000, 4)].map((b) => (b.length === 0 ? Buffer.from('y') : b));
  const { bytes, reported } = await writeVolume(objects);
  assert.equal(bytes.length, reported);
  assert.equal(bytes.length % 4096, 0, 'whole records');
  const seen: VolumeMember[] = [];
  const { label: read, index } = await readVolume(source(bytes), async (m) => void seen.push(m));
  assert.deepEqual(read, label());
  assert.ok(index);
  assert.equal(index.final, true);
  assert.deepEqual(seen.map((m) => m.data), objects);
  let offset = memberLength(encodeTapeLabel(label()).length);
  for (const [i, m] of seen.entries()) {
    assert.equal(m.offset, offset, `offset of member ${i}`);
    assert.equal(m.sha256, createHash('sha256').update(objects[i] as Buffer).digest('hex'));
    offset += memberLength(m.size);
  }
  assert.deepEqual(index.members.slice(1), seen.map(({ data: _data, ...m }) => m));
});

test('a volume never exceeds its capacity, and fills it: the next object would not have fit', async () => {
  const objects = Array.from({ length: 200 }, (_, i) => Buffer.alloc(1000 + ((i * 7919) % 9000), i));
  for (const capacity of [16 * 1024, 40_960, 65_536, 100_000, 131_072, 250_000]) {
    const { bytes, written } = await writeVolume(objects, capacity);
    assert.ok(bytes.length <= capacity, `${bytes.length} bytes in a volume of ${capacity}`);
    assert.ok(written > 0 && written < objects.length);
    // The index of one more member is ~160 bytes: the room left is less than the next object.
    const next = objects[written] as Buffer;
    assert.ok(capacity - bytes.length < memberLength(next.length) + 4096 + 512, `capacity ${capacity}: ${capacity - bytes.length} bytes left unused before a ${next.length}-byte object`);
  }
});

/** A tar stream made by tar-stream from (name, bytes) pairs, padded to 4 KiB. */
async function tarOf(members: [string, Buffer][], pax = false): Promise<Buffer> {
  const archive = tarPack();
  const out: Buffer[] = [];
  const done = (async () => { for await (const chunk of archive) out.push(chunk as Buffer); })();
  for (const [name, data] of members) await new Promise<void>((resolve, reject) => archive.entry({ name, size: data.length, ...(pax ? { pax: { comment: 'x' } } : {}) }, data, (e) => (e ? reject(e) : resolve())));
  archive.finalize();
  await done;
  const bytes = Buffer.concat(out);
  return Buffer.concat([bytes, Buffer.alloc((4096 - (bytes.length % 4096)) % 4096)]);
}

test('the reader refuses what is not a whole Coffer volume, with E_TAPE_INVALID', async () => {
  const good = (await writeVolume([Buffer.from('one'), Buffer.from('two')])).bytes;
  const labelBytes = encodeTapeLabel(label());
  const cases: [string, Buffer, RegExp][] = [
    ['another tar archive', await tarOf([['etc/hosts', Buffer.from('127.0.0.1 localhost\n')]]), /not a Coffer tape volume/],
    ['not a tar archive', Buffer.alloc(8192, 0x41), /not a readable tar archive|not a Coffer tape/],
    ['empty', Buffer.alloc(0), /empty/],
    ['truncated before the index', good.subarray(0, 2048), /ends before its index|not a readable tar archive/],
    ['a member that is no repository object', await tarOf([['COFFER-TAPE/label.json', labelBytes], ['../../etc/passwd', Buffer.from('x')]]), /not a repository object/],
    ['a pax header', await tarOf([['COFFER-TAPE/label.json', labelBytes]], true), /not a plain file member/],
    ['no index', await tarOf([['COFFER-TAPE/label.json', labelBytes], [objectName(1), Buffer.from('x')]]), /ends before its index/],
  ];
  for (const [what, bytes, message] of cases) {
    await assert.rejects(readVolume(source(bytes), async () => {}), (error: unknown) => {
      assert.ok(error instanceof CofferError, `${what}: ${String(error)}`);
      assert.equal(error.code, 'E_TAPE_INVALID', `${what}: ${error.message}`);
      assert.match(error.message, message, what);
      return true;
    }, what);
  }
});

test('a member whose bytes differ from the index is named; a member after the index is refused', async () => {
  const { bytes } = await writeVolume([Buffer.alloc(3000, 7), Buffer.alloc(3000, 8)]);
  const damaged = Buffer.from(bytes);
  const second = memberLength(encodeTapeLabel(label()).length) + memberLength(3000);
  damaged[second + 512 + 10] = (damaged[second + 512 + 10] as number) ^ 1;
  await assert.rejects(readVolume(source(damaged), async () => {}), (error: CofferError) => {
    assert.equal(error.code, 'E_TAPE_INVALID');
    assert.ok(error.message.includes(objectName(1)) && error.message.includes('sha256'), error.message);
    return true;
  });
  // Append a member after the end: GNU tar stops at the end blocks, Coffer's reader must not accept more.
  const index = (await readVolume(source(bytes), async () => {})).index;
  const end = (index?.members.at(-1)?.offset ?? 0) + memberLength(3000);
  const indexMember = bytes.subarray(end, end + memberLength(JSON.stringify(index).length + 1));
  const extra = await tarOf([[objectName(9), Buffer.from('late')]]);
  const withExtra = Buffer.concat([bytes.subarray(0, end), indexMember, extra]);
  await assert.rejects(readVolume(source(withExtra), async () => {}), /follows the index/);
});

test('bytes after the end of the archive (the rest of a block device) end the volume, as for GNU tar', async () => {
  const { bytes } = await writeVolume([Buffer.alloc(3000, 7)]);
  const device = Buffer.concat([bytes, randomBytes(64 * 1024)]);
  const members: string[] = [];
  const { index } = await readVolume(source(device), async (member) => void members.push(member.name));
  assert.equal(index?.members.length, 2);
  assert.deepEqual(members, [objectName(0)]);
});

test('label and index decoders refuse malformed fields', () => {
  const good = label();
  const labels: [string, unknown][] = [
    ['another format', { ...good, format: 'tar' }],
    ['a newer version', { ...good, version: 3 }],
    ['sequence 0', { ...good, sequence: 0 }],
    ['a short tape set', { ...good, tapeSet: 'abc' }],
    ['a record size not a multiple of 512', { ...good, recordSize: 1000 }],
    ['a bad date', { ...good, created: 'yesterday' }],
  ];
  assert.deepEqual(decodeTapeLabel(encodeTapeLabel(good), 'x'), good);
  for (const [what, value] of labels) assert.throws(() => decodeTapeLabel(Buffer.from(JSON.stringify(value)), 'x'), /x: /, what);
  const index = { format: 'coffer-tape-index', version: 1, tapeSet: good.tapeSet, sequence: 2, final: true, volumes: 2, snapshots: [], members: [] };
  assert.equal(decodeTapeIndex(Buffer.from(JSON.stringify(index)), 'x').volumes, 2);
  const indexes: [string, unknown][] = [
    ['final with another count', { ...index, volumes: 3 }],
    ['not final with a count', { ...index, final: false }],
    ['a bad member', { ...index, members: [{ name: 'config', offset: -1, size: 1, sha256: '0'.repeat(64) }] }],
    ['a bad snapshot id', { ...index, snapshots: ['xyz'] }],
  ];
  for (const [what, value] of indexes) assert.throws(() => decodeTapeIndex(Buffer.from(JSON.stringify(value)), 'x'), /x: /, what);
  assert.equal(TAR_END_BYTES, 1024);
});

test('a sink that fails mid-volume: its error comes out of the writer, no hang', async () => {
  let records = 0;
  const sink: VolumeSink = {
    name: 'failing',
    async writeRecord() {
      if (++records > 2) throw new CofferError('E_NO_SPACE', 'no space left to write failing');
    },
    async close() {},
  };
  const writer = await VolumeWriter.start(sink, label(), [], Number.MAX_SAFE_INTEGER);
  const writing = (async () => {
    for (let i = 0; i < 20; i++) await writer.add(objectName(i), Buffer.alloc(50_000, i));
    await writer.finish(true);
  })();
  const deadline = new Promise((_, reject) => setTimeout(() => reject(new Error('the writer hung after its sink failed')), 5000).unref());
  await assert.rejects(Promise.race([writing, deadline]), (error: CofferError) => error.code === 'E_NO_SPACE');
});
