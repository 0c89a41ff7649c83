import { randomBytes } from 'node:crypto';
import { CofferError } from '../../errors/index.js';
import { ObjectKind } from '../format/envelope.js';
import { decodeIndexPage, isZeroEntry } from '../format/index-page.js';
import { ChunksById } from '../chunks-by-id.js';
import { getFileTree } from '../file-trees.js';
import { decodeFileTree, type FileTree } from '../format/file-tree.js';
import { chunkKey, CONFIG_KEY, indexKey, KEYS_PREFIX, snapshotKey, treeKey } from '../layout.js';
import type { Repository } from '../repository.js';
import { addSnapshotNote } from '../snapshot-notes.js';
import type { Snapshot } from '../snapshots.js';
import { TAPE_FORMAT, TAPE_FORMAT_VERSION, TAPE_FORMAT_VERSION_PACKS, isValidRecordSize, type TapeLabel } from './tape-format.js';
import { PackMembers } from './pack-members.js';
import { VolumeWriter } from './volume-writer.js';
import type { VolumeTarget } from './volume-sink.js';

/** The note kind of the media catalog: which tape volumes hold a snapshot. */
export const TAPE_NOTE = 'tape';

/**
 * Defaults, with their reasons. 256 KiB records: the block size LTO drives are usually run
 * with (large enough to stream at full speed, accepted by every drive and by the st driver),
 * and the repository's default block size, so a chunk takes about one record.
 */
export const TAPE_DEFAULTS = { recordSize: 256 * 1024 } as const;

/**
 * Chunks read and authenticated ahead of the one being written: enough to keep the codec
 * workers and the disk busy while the tape writes (a 1 GiB export: 5.2 s sequential).
 */
const READ_AHEAD = 8;

/** What the media catalog note of a snapshot holds (kind {@link TAPE_NOTE}). */
export interface TapeNoteData {
  tapeSet: string;
  created: string;
  /** The snapshot's VM and time, so the catalog still names it once it is forgotten. */
  vm?: string;
  time?: string;
  /** The volumes holding the snapshot's objects, with where they were written. */
  volumes: { sequence: number; name: string }[];
  /** Set when the note was written by `tape import` (the snapshot came from this tape). */
  imported?: boolean;
}

/** Progress of an export, for the CLI to render. */
export interface TapeExportProgress {
  volume: number;
  objects: number;
  bytes: number;
}

export interface TapeExportOptions {
  /** Where the volumes go. */
  target: VolumeTarget;
  /** Record (tape block) size: a multiple of 512, at most 16 MiB. */
  recordSize?: number;
  /** The most bytes a volume may take; a new volume starts when the next object would not fit. Unlimited when absent. */
  volumeSize?: number;
  now?: Date;
  onProgress?: (progress: TapeExportProgress) => void;
  signal?: AbortSignal;
}

/** What an export wrote. */
export interface TapeExportReport {
  tapeSet: string;
  created: string;
  snapshots: string[];
  volumes: { sequence: number; name: string; bytes: number; members: number }[];
  objects: number;
  /** Bytes of objects written (without tar headers and padding). */
  objectBytes: number;
}

/**
 * Writes `snapshots` as a self-contained tape set (tape-format.ts) to `options.target`: the label,
 * the repository's config and keys, then each snapshot's manifest followed by its disks'
 * index pages, each page followed by the chunks it names that are not on the set yet (a file
 * snapshot: its trees depth first, each followed by the chunks its files name that are not on
 * the set yet), and an index closing every volume. Objects are copied as stored; each chunk is authenticated first
 * (a damaged chunk fails the export with `E_CORRUPT_OBJECT` instead of reaching the tape).
 * A format 2 repository writes a version 2 set (tape-format.ts): each page is followed by the
 * packs holding its chunks, whole and checked (pack-members.ts), and each snapshot by an index
 * segment naming the chunks of the packs it added to the set.
 * When it is done, each snapshot gets a media catalog note (kind `tape`) naming the volumes
 * holding its objects.
 */
export async function exportTape(repo: Repository, snapshots: readonly Snapshot[], options: TapeExportOptions): Promise<TapeExportReport> {
  const target = options.target;
  const recordSize = options.recordSize ?? TAPE_DEFAULTS.recordSize;
  if (!isValidRecordSize(recordSize)) throw new CofferError('E_USAGE', `block size ${recordSize} must be a multiple of 512 bytes, at most 16 MiB`);
  const capacity = options.volumeSize ?? Number.MAX_SAFE_INTEGER;
  if (capacity < 4 * recordSize) throw new CofferError('E_USAGE', `volume size ${capacity} must hold at least 4 records of ${recordSize} bytes`);
  if (snapshots.length === 0) throw new CofferError('E_USAGE', 'no snapshot to export');
  const created = (options.now ?? new Date()).toISOString();
  const tapeSet = randomBytes(16).toString('hex');
  const snapshotIds = [...new Set(snapshots.map((s) => s.id))];
  const packed = repo.config.version === 2;
  const label = (sequence: number): TapeLabel => ({ format: TAPE_FORMAT, version: packed ? TAPE_FORMAT_VERSION_PACKS : TAPE_FORMAT_VERSION, tapeSet, sequence, repository: repo.config.id, created, recordSize });

  const report: TapeExportReport = { tapeSet, created, snapshots: snapshotIds, volumes: [], objects: 0, objectBytes: 0 };
  /** Repository key → the volume it went to: each object once per set. */
  const placed = new Map<string, number>();
  let volume = await VolumeWriter.start(await target.open(1), label(1), snapshotIds, capacity);

  const tooSmall = (key: string, size: number) =>
    new CofferError('E_USAGE', `a volume of ${capacity} bytes cannot hold ${key} (${size} bytes) with the label, the repository's keys and the index: give a larger volume size`);
  const put = async (key: string, data: Buffer): Promise<number> => {
    if (options.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'interrupted');
    const already = placed.get(key);
    if (already !== undefined) return already;
    if (!volume.fits(key, data.length)) {
      // The config and keys are all on volume 1, where an import needs them first.
      if (volume.objectCount === 0 || key === CONFIG_KEY || key.startsWith(KEYS_PREFIX)) throw tooSmall(key, data.length);
      await closeVolume(false);
      const sequence = volume.label.sequence + 1;
      volume = await VolumeWriter.start(await target.open(sequence), label(sequence), snapshotIds, capacity);
      if (!volume.fits(key, data.length)) throw tooSmall(key, data.length);
    }
    await volume.add(key, data);
    placed.set(key, volume.label.sequence);
    report.objects++;
    report.objectBytes += data.length;
    options.onProgress?.({ volume: volume.label.sequence, objects: report.objects, bytes: report.objectBytes });
    return volume.label.sequence;
  };
  const closeVolume = async (final: boolean) => {
    const { bytes, members } = await volume.finish(final);
    report.volumes.push({ sequence: volume.label.sequence, name: volume.name, bytes, members: members.length });
  };

  /**
   * Chunks not yet on the set, each once, read and authenticated READ_AHEAD at a time while
   * they are written in order; the volumes holding them (placed now or before) go to `volumes`.
   */
  const putChunks = async (ids: readonly Buffer[], volumes: Set<number>): Promise<void> => {
    const todo = new Map<string, Buffer>();
    for (const id of ids) {
      const key = chunkKey(id.toString('hex'));
      const known = placed.get(key);
      if (known !== undefined) volumes.add(known);
      else todo.set(key, id);
    }
    const fetch = async (key: string, id: Buffer): Promise<Buffer> => {
      const blob = await repo.backend.get(key);
      // On a worker thread, on a copy: the pool may take the buffer it is given.
      await repo.pool.open(Buffer.from(blob), { kind: ObjectKind.chunk, name: key, id, rehash: false, into: 'discard' });
      return blob;
    };
    const queue = [...todo];
    let next = 0;
    const inflight: { key: string; blob: Promise<Buffer> }[] = [];
    while (next < queue.length || inflight.length > 0) {
      while (next < queue.length && inflight.length < READ_AHEAD) {
        const [key, id] = queue[next++] as [string, Buffer];
        const blob = fetch(key, id);
        blob.catch(() => {}); // awaited below, in order
        inflight.push({ key, blob });
      }
      const head = inflight.shift() as { key: string; blob: Promise<Buffer> };
      volumes.add(await put(head.key, await head.blob));
    }
  };

  /**
   * A file snapshot's directory, depth first: its tree (authenticated and validated), then the
   * chunks its files name, then its subdirectories. Answers the volumes holding the whole
   * subtree; a subtree met again (in this snapshot or an earlier one) is not walked again.
   * Format 2: the tree and its chunks are chunks in packs (docs/repository-format.md §19.10),
   * found by id through the segments; the packs holding them are written whole, and the
   * snapshot's segment after them names their chunks.
   */
  const treeVolumes = new Map<string, Set<number>>();
  const putTree = async (id: string): Promise<Set<number>> => {
    const known = treeVolumes.get(id);
    if (known !== undefined) return known;
    let tree: FileTree;
    const volumes = new Set<number>();
    if (byId !== null && packs !== null) {
      tree = decodeFileTree(await byId.read(Buffer.from(id, 'hex')), `tree ${id}`);
      await packs.putPacksOf([await locate(id)], volumes);
    } else {
      const key = treeKey(id);
      const blob = await repo.backend.get(key);
      tree = await getFileTree(repo, id, blob);
      volumes.add(await put(key, blob));
    }
    const chunks: Buffer[] = [];
    for (const entry of tree.entries) for (const [what] of entry.content ?? []) if (what !== 'hole' && what !== 'zero') chunks.push(Buffer.from(what, 'hex'));
    if (packs !== null) await packs.putPacksOf(await Promise.all(chunks.map((chunk) => locate(chunk.toString('hex')))), volumes);
    else await putChunks(chunks, volumes);
    for (const entry of tree.entries) if (entry.type === 'directory') for (const sequence of await putTree(entry.tree as string)) volumes.add(sequence);
    treeVolumes.set(id, volumes);
    return volumes;
  };
  /** Format 2: chunks and trees by id (a file snapshot's), through the segments. */
  const byId = packed ? new ChunksById(repo) : null;
  const locate = async (hex: string): Promise<Buffer> => {
    const first = (await (byId as ChunksById).locations(Buffer.from(hex, 'hex')))[0];
    if (first === undefined) throw new CofferError('E_MISSING_OBJECT', `chunk ${hex} is missing: no index segment names it`, { subject: { repository: repo.location, object: hex } });
    return first;
  };

  /** Format 2: whole packs instead of chunks, and a segment naming their chunks after each snapshot's. */
  const packs = packed ? new PackMembers(repo, put) : null;
  const onVolumes = new Map<string, Set<number>>();
  try {
    // The keys before the config, as init writes them: what holds the config can be opened.
    const keyNames: string[] = [];
    for await (const entry of repo.backend.list(KEYS_PREFIX)) keyNames.push(entry.key);
    for (const key of keyNames.sort()) await put(key, await repo.backend.get(key));
    await put(CONFIG_KEY, await repo.backend.get(CONFIG_KEY));
    for (const snapshot of snapshots) {
      const volumes = new Set<number>();
      onVolumes.set(snapshot.id, volumes);
      volumes.add(await put(snapshotKey(snapshot.id), await repo.backend.get(snapshotKey(snapshot.id))));
      for (const disk of snapshot.disks) {
        for (const page of disk.pages) {
          const pageKey = indexKey(page);
          const pageBlob = await repo.backend.get(pageKey);
          const entries = decodeIndexPage(repo.codec.open(pageBlob, ObjectKind.indexPage, pageKey, Buffer.from(page, 'hex')), page);
          volumes.add(await put(pageKey, pageBlob));
          const chunks: Buffer[] = [];
          for (const entry of entries) if (!isZeroEntry(entry)) chunks.push(entry);
          if (packs !== null) await packs.putPacksOf(chunks, volumes);
          else await putChunks(chunks, volumes);
        }
      }
      if (snapshot.files !== undefined) for (const sequence of await putTree(snapshot.files.tree)) volumes.add(sequence);
      if (packs !== null) await packs.putSegment(volumes);
    }
    await closeVolume(true);
    await target.commit?.();
  } catch (error) {
    // The volume in progress is closed with its index, not final: an import of the set
    // reports the volume after it as missing, and nothing of it becomes a snapshot.
    await volume.finish(false).catch(() => {});
    await target.discard?.(); // files of an unfinished set are of no use to anyone
    throw error;
  }

  for (const snapshot of snapshots) {
    const sequences = [...(onVolumes.get(snapshot.id) ?? [])].sort((a, b) => a - b);
    const data: TapeNoteData = { tapeSet, created, vm: snapshot.vm, time: snapshot.time, volumes: sequences.map((sequence) => ({ sequence, name: report.volumes[sequence - 1]?.name ?? '' })) };
    await addSnapshotNote(repo, snapshot.id, TAPE_NOTE, data, options.now);
  }
  return report;
}
