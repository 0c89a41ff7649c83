/**
 * Digest records and the key-holder side that writes them, on a real local backend: the byte
 * format and its bounds checks, the signing key derived from the master key, when records are
 * written (before a manifest, on sync, every maxEntries), that a record that failed to be
 * written loses nothing, and that deletions are recorded so verifyStored does not call them
 * missing.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import type { Backend, BackendEntry } from '../backend/backend.js';
import { ForwardingBackend } from '../backend/forwarding-backend.js';
import { FaultyBackend } from '../backend/faulty-backend.js';
import { LocalBackend } from '../backend/local-backend.js';
import { decodeDigestRecord, encodeDigestRecordBody, type DigestEntry } from '../format/digest-record.js';
import { deriveSigningKey, verifySignature } from '../keys/signing-key.js';
import { newMasterKey } from '../keys/master-key.js';
import { initRepository, openRepository } from '../repository.js';
import { DigestRecordingBackend, digestRecorderOf } from './digest-recording-backend.js';
import { verifyStored } from './verify-stored.js';

const roots: string[] = [];
after(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function localBackend(): Promise<LocalBackend> {
  const root = await mkdtemp(join(tmpdir(), 'coffer-digests-'));
  roots.push(root);
  return new LocalBackend(root);
}

/** Passes everything through to a real backend and notes the order of puts. */
class PutLog extends ForwardingBackend {
  readonly puts: string[] = [];
  override async put(key: string, data: Uint8Array): Promise<void> {
    await this.inner.put(key, data);
    this.puts.push(key);
  }
}

async function records(backend: Backend): Promise<{ key: string; entries: DigestEntry[]; timeMs: number }[]> {
  const found: { key: string; entries: DigestEntry[]; timeMs: number }[] = [];
  for await (const entry of backend.list('digests/')) {
    const record = decodeDigestRecord(await backend.get(entry.key), entry.key);
    found.push({ key: entry.key, entries: record.entries, timeMs: record.timeMs });
  }
  return found.sort((a, b) => a.timeMs - b.timeMs || a.key.localeCompare(b.key));
}

const sha = (data: Uint8Array) => createHash('sha256').update(data).digest();
const chunk = (n: number) => `chunks/0${n % 10}/${String(n).padStart(64, '0')}`;

test('a record round-trips, its signature checks with the derived key only, and every malformed variant is refused', () => {
  const master = newMasterKey();
  const key = deriveSigningKey(master);
  assert.equal(deriveSigningKey({ encryptionKey: Buffer.from(master.encryptionKey), idKey: Buffer.from(master.idKey) }).fingerprint, key.fingerprint, 'derived, so the same for every key holder');
  const other = deriveSigningKey(newMasterKey());
  assert.notEqual(other.fingerprint, key.fingerprint);
  const entries: DigestEntry[] = [
    { op: 'stored', key: chunk(1), length: 12345, sha256: sha(Buffer.from('a')) },
    { op: 'deleted', key: chunk(2) },
    { op: 'stored', key: 'config', length: 300, sha256: sha(Buffer.from('c')) },
  ];
  const body = encodeDigestRecordBody(1_764_000_000_000, key.publicKey, entries);
  const bytes = Buffer.concat([body, key.sign(body)]);
  const record = decodeDigestRecord(bytes, 'r');
  assert.deepEqual(record.entries, entries);
  assert.equal(record.timeMs, 1_764_000_000_000);
  assert.ok(record.signer.equals(key.publicKey));
  assert.ok(verifySignature(key.publicKey, record.signed, record.signature));
  assert.ok(!verifySignature(other.publicKey, record.signed, record.signature));
  const flipped = Buffer.from(bytes);
  flipped.writeUInt8(flipped.readUInt8(60) ^ 1, 60);
  const tampered = decodeDigestRecord(flipped, 'r');
  assert.ok(!verifySignature(key.publicKey, tampered.signed, tampered.signature));

  const mutate = (f: (b: Buffer) => Buffer) => f(Buffer.from(bytes));
  const cases: [string, Buffer][] = [
    ['too short', bytes.subarray(0, 100)],
    ['bad magic', mutate((b) => (b.write('XXXX', 0), b))],
    ['unknown version', mutate((b) => (b.writeUInt8(2, 4), b))],
    ['reserved bytes', mutate((b) => (b.writeUInt8(1, 6), b))],
    ['zero entries', mutate((b) => (b.writeUInt32LE(0, 48), b))],
    ['more entries than bytes', mutate((b) => (b.writeUInt32LE(4, 48), b))],
    ['fewer entries than bytes', mutate((b) => (b.writeUInt32LE(2, 48), b))],
    ['unknown op', mutate((b) => (b.writeUInt8(9, 52), b))],
    ['a key of 0 bytes', mutate((b) => (b.writeUInt16LE(0, 53), b))],
    ['truncated', bytes.subarray(0, bytes.length - 1)],
  ];
  for (const [what, variant] of cases) {
    assert.throws(() => decodeDigestRecord(variant, 'r'), (error) => isCofferError(error) && error.code === 'E_CORRUPT_OBJECT', what);
  }
  const twice = encodeDigestRecordBody(1, key.publicKey, [entries[1] as DigestEntry, entries[1] as DigestEntry]);
  assert.throws(() => decodeDigestRecord(Buffer.concat([twice, key.sign(twice)]), 'r'), /appears twice/);
});

test('the record of what a backup stored is written before its manifest; the manifest is recorded at the next sync', async () => {
  const log = new PutLog(await localBackend());
  let clock = 0;
  const backend = new DigestRecordingBackend(log, deriveSigningKey(newMasterKey()), { now: () => new Date(++clock * 1000) });
  await backend.put(chunk(1), Buffer.from('one'));
  await backend.put('indexes/00/'.padEnd(75, '0'), Buffer.from('page'));
  await backend.put('leases/'.padEnd(71, 'a'), Buffer.from('lease')); // rewritten by design: not recorded
  await backend.put(`snapshots/${'5'.repeat(64)}`, Buffer.from('manifest'));
  await backend.sync();
  assert.deepEqual(log.puts.map((key) => key.split('/')[0]), ['chunks', 'indexes', 'leases', 'stored-digest-key', 'digests', 'snapshots', 'digests']);
  const [first, second] = (await records(log)) as unknown as [{ entries: DigestEntry[] }, { entries: DigestEntry[] }];
  assert.deepEqual(first.entries.map((e) => e.key).sort(), [chunk(1), 'indexes/00/'.padEnd(75, '0')]);
  assert.deepEqual(second.entries, [{ op: 'stored', key: `snapshots/${'5'.repeat(64)}`, length: 8, sha256: sha(Buffer.from('manifest')) }]);
  assert.equal(await backend.flush(), false, 'nothing waits: no empty record');
});

test('records are cut every maxEntries entries, and a record that failed to be written loses nothing', async () => {
  const local = await localBackend();
  const faulty = new FaultyBackend(local, [{ method: 'put', keyPrefix: 'digests/', nth: 1, code: 'E_BACKEND_IO' }]);
  const backend = new DigestRecordingBackend(faulty, deriveSigningKey(newMasterKey()), { maxEntries: 3 });
  for (let n = 0; n < 2; n++) await backend.put(chunk(n), Buffer.from(`chunk ${n}`));
  await assert.rejects(backend.put(chunk(2), Buffer.from('chunk 2')), (error) => isCofferError(error) && error.code === 'E_BACKEND_IO');
  assert.deepEqual(faulty.unexercised(), []);
  for (let n = 3; n < 7; n++) await backend.put(chunk(n), Buffer.from(`chunk ${n}`));
  await backend.flush();
  const written = await records(local);
  assert.deepEqual(written.map((r) => r.entries.length).sort(), [1, 3, 3]);
  assert.deepEqual(written.flatMap((r) => r.entries.map((e) => e.key)).sort(), Array.from({ length: 7 }, (_, n) => chunk(n)).sort());
});

test('deletions are recorded: an object deleted by a key holder is not missing, even during the check; one deleted behind its back is', async () => {
  const local = await localBackend();
  let fingerprint = '';
  await initRepository(local, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, onStoredDigestKey: (f) => (fingerprint = f) });
  const repo = await openRepository(local, { passphrase: 'pw', threads: 1 });
  assert.equal(repo.storedDigestFingerprint, fingerprint);
  for (let n = 0; n < 4; n++) await repo.backend.put(chunk(n), Buffer.from(`chunk ${n}`));
  await repo.backend.sync();
  await repo.backend.delete(chunk(0));
  await repo.close(); // records the deletion
  await local.delete(chunk(1)); // behind its back
  // A prune deletes chunk 2 while the check runs: after the records were read, before the listing.
  const during = new ListHook(local, async () => {
    const pruner = await openRepository(local, { passphrase: 'pw', threads: 1 });
    await pruner.backend.delete(chunk(2));
    await pruner.close();
  });
  const report = await verifyStored(during, { trust: fingerprint });
  assert.deepEqual(report.damaged.map((d) => [d.key, d.problem]), [[chunk(1), 'missing']]);
  assert.deepEqual(report.notCovered, []);
  assert.ok(report.objectsIntact >= 3, 'chunk 3, the key file and the config');
});

/** A real backend that runs `hook` once, when the whole repository is first listed. */
class ListHook extends PutLog {
  private ran = false;
  constructor(
    inner: Backend,
    private readonly hook: () => Promise<void>,
  ) {
    super(inner);
  }
  override async *list(prefix: string): AsyncIterable<BackendEntry> {
    if (prefix === '' && !this.ran) {
      this.ran = true;
      await this.hook();
    }
    yield* super.list(prefix);
  }
}

test('the recorder is found under other wrappers (Object Lock, faults), and not where there is none', async () => {
  const local = await localBackend();
  const recorder = new DigestRecordingBackend(local, deriveSigningKey(newMasterKey()));
  assert.equal(digestRecorderOf({ backend: recorder }), recorder);
  assert.equal(digestRecorderOf({ backend: new FaultyBackend(new PutLog(recorder), []) }), recorder);
  assert.equal(digestRecorderOf({ backend: new FaultyBackend(recorder, []) }), recorder);
  assert.equal(digestRecorderOf({ backend: local }), undefined);
});
