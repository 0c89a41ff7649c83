import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { CofferError } from '../errors/index.js';
import { addSnapshotNote, deleteSnapshotNotes, initRepository, listSnapshotNotes, LocalBackend, openRepository, type Repository } from './index.js';

let dir: string;
let repo: Repository;
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-notes-'));
  const backend = new LocalBackend(dir);
  await initRepository(backend, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 } });
  repo = await openRepository(backend, { passphrase: 'pw' });
});
after(async () => {
  await repo.close();
  await fs.rm(dir, { recursive: true, force: true });
});

test('notes are listed per snapshot and kind, oldest first, and deleted with their snapshot', async () => {
  await addSnapshotNote(repo, A, 'test-restore', { passed: false }, new Date('2026-11-20T00:00:00Z'));
  await addSnapshotNote(repo, A, 'test-restore', { passed: true }, new Date('2026-11-21T00:00:00Z'));
  await addSnapshotNote(repo, A, 'verify', { ok: true }, new Date('2026-11-22T00:00:00Z'));
  await addSnapshotNote(repo, B, 'test-restore', { passed: true }, new Date('2026-11-19T00:00:00Z'));
  const all = await listSnapshotNotes(repo, { kind: 'test-restore' });
  assert.deepEqual(all.map((n) => [n.snapshot, n.time.slice(0, 10)]), [[B, '2026-11-19'], [A, '2026-11-20'], [A, '2026-11-21']]);
  const ofA = await listSnapshotNotes(repo, { snapshot: A });
  assert.deepEqual(ofA.map((n) => n.kind), ['test-restore', 'test-restore', 'verify']);
  assert.deepEqual(ofA[1]?.data, { passed: true });
  await deleteSnapshotNotes(repo, A);
  assert.deepEqual((await listSnapshotNotes(repo)).map((n) => n.snapshot), [B]);
  await assert.rejects(addSnapshotNote(repo, B, 'Bad Kind', {}), RangeError);
});

test('a note tampered with, or moved to another snapshot, is reported as damaged, never believed', async () => {
  const note = await addSnapshotNote(repo, A, 'test-restore', { passed: true });
  const file = path.join(dir, 'notes', `${A}.${note.id}`);
  // Moved: the same sealed bytes under another snapshot's name.
  await fs.copyFile(file, path.join(dir, 'notes', `${B}.${note.id}`));
  // Tampered: one bit flipped in the ciphertext.
  const bytes = await fs.readFile(file);
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 5) ^ 1, bytes.length - 5);
  await fs.writeFile(file, bytes);
  const damaged: string[] = [];
  const notes = await listSnapshotNotes(repo, { onDamaged: (key) => damaged.push(key) });
  assert.deepEqual(damaged.sort(), [`notes/${A}.${note.id}`, `notes/${B}.${note.id}`]);
  assert.ok(notes.every((n) => n.id !== note.id));
  await assert.rejects(listSnapshotNotes(repo), (error: unknown) => error instanceof CofferError && error.code === 'E_CORRUPT_OBJECT');
});
