import { CofferError, isCofferError } from '../../errors/index.js';
import type { Backend, BackendEntry } from '../backend/backend.js';
import { decodeConfig } from '../format/config.js';
import { ObjectKind } from '../format/envelope.js';
import { decodeFileTree } from '../format/file-tree.js';
import { decodeIndexPage } from '../format/index-page.js';
import { IndexSegment } from '../format/index-segment.js';
import { CHUNKS_PREFIX, CONFIG_KEY, idFromKey, INDEXES_PREFIX, KEYS_PREFIX, PACKS_PREFIX, SEGMENTS_PREFIX, snapshotKey, SNAPSHOTS_PREFIX, TREES_PREFIX } from '../layout.js';
import { trailerOfPack } from '../sync/pack-contents.js';
import { acquireBackupLease, type HeldLease } from '../leases.js';
import { openRepository, type OpenOptions, type Repository } from '../repository.js';
import { addSnapshotNote } from '../snapshot-notes.js';
import { loadSnapshot } from '../snapshots.js';
import { TAPE_NOTE, type TapeNoteData } from './tape-export.js';
import type { TapeIndex, TapeLabel } from './tape-format.js';
import { readVolume, type VolumeMember } from './volume-reader.js';
import type { VolumeSource } from './volume-sink.js';

/** Objects being authenticated and stored while the next are read (each at most 64 MiB, mostly 256 KiB). */
const IMPORT_AHEAD = 8;

export interface TapeImportOptions {
  /** The passphrase of the tape's repository (its keys are on the tape); asked for once. */
  passphrase?: OpenOptions['passphrase'];
  threads?: number;
  now?: Date;
  signal?: AbortSignal;
  onProgress?: (progress: { volume: number; objects: number }) => void;
}

/** What an import did. */
export interface TapeImportReport {
  tapeSet: string;
  repository: string;
  created: string;
  /** True when the target was empty and became the tape's repository. */
  createdRepository: boolean;
  volumes: number;
  snapshots: { id: string; added: boolean }[];
  /** Snapshot manifests, index pages, file trees and chunks read (and authenticated). */
  objectsRead: number;
  /** Those the repository lacked and that were stored. */
  objectsWritten: number;
  bytesWritten: number;
}

/**
 * Reads the labels of `sources` and puts the volumes in order: one tape set, every sequence
 * number from 1 to the highest given exactly once. Throws `E_TAPE_VOLUME_MISSING` naming the
 * sequence numbers not given, `E_TAPE_INVALID` for volumes of different sets.
 */
export async function orderVolumes(sources: readonly VolumeSource[], signal?: AbortSignal): Promise<{ source: VolumeSource; label: TapeLabel }[]> {
  const volumes: { source: VolumeSource; label: TapeLabel }[] = [];
  for (const source of sources) {
    const { label } = await readVolume(source, async () => {}, signal === undefined ? { labelOnly: true } : { labelOnly: true, signal });
    volumes.push({ source, label });
  }
  const first = volumes[0];
  if (first === undefined) throw new CofferError('E_USAGE', 'no tape volume given');
  for (const v of volumes) {
    if (v.label.tapeSet !== first.label.tapeSet) {
      throw new CofferError('E_TAPE_INVALID', `${v.source.name} belongs to tape set ${v.label.tapeSet}, ${first.source.name} to ${first.label.tapeSet}: give the volumes of one set`, { subject: { path: v.source.name } });
    }
  }
  volumes.sort((a, b) => a.label.sequence - b.label.sequence);
  const highest = (volumes.at(-1) as { label: TapeLabel }).label.sequence;
  const given = new Map<number, string>();
  for (const v of volumes) {
    const twice = given.get(v.label.sequence);
    if (twice !== undefined) throw new CofferError('E_USAGE', `${twice} and ${v.source.name} are both volume ${v.label.sequence} of tape set ${first.label.tapeSet}`);
    given.set(v.label.sequence, v.source.name);
  }
  const missing: number[] = [];
  for (let sequence = 1; sequence <= highest; sequence++) if (!given.has(sequence)) missing.push(sequence);
  if (missing.length > 0) {
    throw new CofferError('E_TAPE_VOLUME_MISSING', `volume${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of tape set ${first.label.tapeSet} ${missing.length > 1 ? 'are' : 'is'} missing: give every volume of the set`);
  }
  return volumes;
}

/**
 * Imports a tape set into the repository on `target`: an empty target becomes the tape's
 * repository (its config and keys come from volume 1); a target that is already that
 * repository (same id) gets what it lacks. Every object read is authenticated with the
 * repository key before it is stored (`E_CORRUPT_OBJECT` names the volume and member), and
 * every volume is checked against its index; the snapshots become visible (manifests written
 * last, after a sync) only once every volume was read and checked, so a failed import leaves
 * at most unreferenced chunks, which prune removes. Each imported snapshot gets a media
 * catalog note (kind `tape`, `imported: true`).
 */
export async function importTape(sources: readonly VolumeSource[], target: Backend, options: TapeImportOptions = {}): Promise<TapeImportReport> {
  const volumes = await orderVolumes(sources, options.signal);
  const first = (volumes[0] as { label: TapeLabel }).label;
  let passphrase: string | undefined;
  let asked = false;
  const askOnce = async (): Promise<string | undefined> => {
    if (!asked) {
      passphrase = typeof options.passphrase === 'function' ? await options.passphrase() : options.passphrase;
      asked = true;
    }
    return passphrase;
  };
  const report: TapeImportReport = {
    tapeSet: first.tapeSet, repository: first.repository, created: first.created, createdRepository: false,
    volumes: volumes.length, snapshots: [], objectsRead: 0, objectsWritten: 0, bytesWritten: 0,
  };
  const staged = new Map<string, Buffer>(); // config and keys, from volume 1
  const manifests = new Map<string, Buffer>();
  let repo: Repository | undefined;
  let lease: HeldLease | undefined;

  const open = async (): Promise<Repository> => {
    if (repo !== undefined) return repo;
    if (!staged.has(CONFIG_KEY)) throw new CofferError('E_TAPE_INVALID', `${(volumes[0] as { source: VolumeSource }).source.name}: no repository config before the first object`);
    // The passphrase is tried on the tape's own keys first: a wrong one writes nothing.
    const onTape = await openRepository(new StagedBackend(staged), { passphrase: askOnce, threads: 1 });
    await onTape.close();
    if (onTape.config.id !== first.repository) throw new CofferError('E_TAPE_INVALID', `the config on the tape is of repository ${onTape.config.id}, its label says ${first.repository}`);
    if (await target.has(CONFIG_KEY)) {
      // Which repository it is, before any passphrase is tried on it.
      const existing = decodeConfig(await target.get(CONFIG_KEY), target.location);
      if (existing.id !== first.repository) {
        throw new CofferError('E_USAGE', `${target.location} is repository ${existing.id}, the tape holds repository ${first.repository}: import into an empty folder or into that repository`, { subject: { repository: target.location } });
      }
      repo = await openRepository(target, { passphrase: askOnce, ...(options.threads === undefined ? {} : { threads: options.threads }) });
    } else {
      for await (const entry of target.list('')) {
        throw new CofferError('E_REPO_EXISTS', `${target.location} is neither empty nor a repository (it holds ${entry.key})`, { subject: { repository: target.location } });
      }
      const keys = [...staged].filter(([key]) => key !== CONFIG_KEY);
      for (const [key, bytes] of keys) await target.put(key, bytes);
      if (keys.length > 0) await target.sync(); // (an unencrypted repository has none)
      // Last, as init does, and only where no init or other tape wrote another config meanwhile.
      if (!(await target.create(CONFIG_KEY, staged.get(CONFIG_KEY) as Buffer))) {
        throw new CofferError('E_REPO_EXISTS', `${target.location}: another repository was created here while the tape was read; import into an empty folder`, { subject: { repository: target.location } });
      }
      await target.sync();
      report.createdRepository = true;
      repo = await openRepository(target, { passphrase: askOnce, ...(options.threads === undefined ? {} : { threads: options.threads }) });
      // The same bytes again, through the key holder's backend: now its digests cover them
      // (repository-format.md §18); identical content, so nothing changes for any reader.
      for (const [key, bytes] of [...keys, [CONFIG_KEY, staged.get(CONFIG_KEY) as Buffer] as const]) await repo.backend.put(key, bytes);
    }
    // Chunks stored before their manifests are unreferenced for a while: no prune meanwhile.
    lease = await acquireBackupLease(repo, options.signal === undefined ? {} : { signal: options.signal });
    return repo;
  };

  const inflight: Promise<void>[] = [];
  const store = async (member: VolumeMember, volume: number, source: string) => {
    const data = member.data as Buffer;
    if (member.name === CONFIG_KEY || member.name.startsWith(KEYS_PREFIX)) {
      if (volume !== 1 || repo !== undefined) throw new CofferError('E_TAPE_INVALID', `member ${member.name} outside the start of volume 1`);
      staged.set(member.name, data);
      return;
    }
    const r = await open();
    report.objectsRead++;
    options.onProgress?.({ volume, objects: report.objectsRead });
    const id = Buffer.from(idFromKey(member.name) as string, 'hex');
    if (member.name.startsWith(SNAPSHOTS_PREFIX)) {
      r.codec.open(data, ObjectKind.manifest, member.name, id);
      manifests.set(id.toString('hex'), data);
      return;
    }
    // Authenticated and stored while the next members are read, a few at a time.
    const task = (async () => {
      try {
        if (member.name.startsWith(CHUNKS_PREFIX)) {
          await r.pool.open(Buffer.from(data), { kind: ObjectKind.chunk, name: member.name, id, rehash: false, into: 'discard' });
        } else if (member.name.startsWith(INDEXES_PREFIX)) {
          decodeIndexPage(r.codec.open(data, ObjectKind.indexPage, member.name, id), member.name);
        } else if (member.name.startsWith(TREES_PREFIX)) {
          decodeFileTree(r.codec.open(data, ObjectKind.fileTree, member.name, id), member.name);
        } else if (member.name.startsWith(PACKS_PREFIX)) {
          // A pack is named by the SHA-256 of its bytes; its trailer opens with the key.
          if ((await r.pool.sha256(data)).toString('hex') !== id.toString('hex')) throw new CofferError('E_CORRUPT_OBJECT', `pack ${member.name}: its bytes do not hash to its id`);
          trailerOfPack(r, data, member.name);
        } else if (member.name.startsWith(SEGMENTS_PREFIX)) {
          IndexSegment.decode(r.codec.open(data, ObjectKind.indexSegment, member.name, id), member.name);
        }
      } catch (error) {
        if (!isCofferError(error, 'E_CORRUPT_OBJECT')) throw error;
        throw new CofferError('E_CORRUPT_OBJECT', `${source}: member ${member.name} at offset ${member.offset}: ${error.message}`, {
          subject: { path: source, object: member.name, offset: member.offset },
          cause: error,
        });
      }
      if (await r.backend.has(member.name)) return;
      await r.backend.put(member.name, data);
      report.objectsWritten++;
      report.bytesWritten += data.length;
    })();
    task.catch(() => {}); // awaited below or when the volume ends
    inflight.push(task);
    if (inflight.length >= IMPORT_AHEAD) await inflight.shift();
  };
  const drain = async () => {
    const tasks = inflight.splice(0);
    for (const task of tasks) await task; // in order: the first failure is the one told
  };

  try {
    let last: TapeIndex | undefined;
    for (const { source, label } of volumes) {
      let index: TapeIndex | null;
      try {
        ({ index } = await readVolume(source, (member) => store(member, label.sequence, source.name), options.signal === undefined ? {} : { signal: options.signal }));
      } catch (error) {
        await drain(); // a member read earlier that failed is the first problem: told first
        throw error;
      }
      await drain();
      last = index as TapeIndex;
    }
    const end = last as TapeIndex;
    if (!end.final) {
      throw new CofferError('E_TAPE_VOLUME_MISSING', `volume ${end.sequence + 1} of tape set ${first.tapeSet} is missing: volume ${end.sequence} is not the last of the set`);
    }
    const r = await open();
    const missing = end.snapshots.filter((id) => !manifests.has(id));
    if (missing.length > 0) throw new CofferError('E_TAPE_INVALID', `the tape set lists snapshot ${missing[0]} but holds no manifest for it`);
    // Everything the manifests name is stored and durable before any of them exists.
    await r.backend.sync();
    for (const id of end.snapshots) {
      const added = !(await r.backend.has(snapshotKey(id)));
      if (added) {
        const manifest = manifests.get(id) as Buffer;
        await r.backend.put(snapshotKey(id), manifest);
        report.objectsWritten++;
        report.bytesWritten += manifest.length;
      }
      report.snapshots.push({ id, added });
    }
    await r.backend.sync();
    const note: TapeNoteData = { tapeSet: first.tapeSet, created: first.created, volumes: volumes.map(({ source, label }) => ({ sequence: label.sequence, name: source.name })), imported: true };
    for (const { id } of report.snapshots) {
      await loadSnapshot(r, id); // read back: a manifest that does not open is never left believed in
      await addSnapshotNote(r, id, TAPE_NOTE, note, options.now);
    }
    return report;
  } finally {
    await Promise.allSettled(inflight);
    await lease?.release().catch(() => {});
    await repo?.close();
  }
}

/** The config and key files read from a tape, as a read-only backend to open them with. */
class StagedBackend implements Backend {
  readonly location = 'the tape';
  constructor(private readonly objects: ReadonlyMap<string, Buffer>) {}
  put(): Promise<void> {
    return Promise.reject(new Error('the tape is read-only'));
  }
  create(): Promise<boolean> {
    return Promise.reject(new Error('the tape is read-only'));
  }
  sync(): Promise<void> {
    return Promise.resolve();
  }
  get(key: string): Promise<Buffer> {
    const bytes = this.objects.get(key);
    return bytes === undefined ? Promise.reject(new CofferError('E_MISSING_OBJECT', `the tape holds no ${key}`)) : Promise.resolve(bytes);
  }
  has(key: string): Promise<boolean> {
    return Promise.resolve(this.objects.has(key));
  }
  delete(): Promise<void> {
    return Promise.reject(new Error('the tape is read-only'));
  }
  async *list(prefix: string): AsyncIterable<BackendEntry> {
    for (const [key, bytes] of this.objects) if (key.startsWith(prefix)) yield { key, size: bytes.length };
  }
}
