import { hostname as osHostname } from 'node:os';
import { CofferError } from '../errors/index.js';
import { acquireBackupLease, DiskIndexReader, listQuarantined, loadSnapshot, packRemovalsSince, type HeldLease, listSnapshots, saveSnapshot, skipDamaged, type ChangeTrackingRecord, type DiskRecord, type Repository, type Snapshot } from '../repo/index.js';
import type { SourceDisk, VmSource } from '../source/index.js';
import { backupDisk, type DiskProgress } from './backup-disk.js';
import { BlockFingerprints } from './block-fingerprints.js';
import { unchangedFromLayer, withChangesAboveLayer } from './chain-tracking.js';
import { KnownChunks } from './known-chunks.js';
import { PackedChunks } from './packed-chunks.js';
import { blockSizeForDisk, blocksPerFrameFor } from './tracked-block-size.js';
import { verifyUnchangedSample } from './verify-unchanged.js';

/** Progress of a VM backup: the disk in progress and the totals so far. */
export interface BackupProgress extends DiskProgress {
  /** Bytes done over every disk. */
  vmBytesDone: number;
  vmBytesTotal: number;
}

/** Options of {@link backupVm}. */
export interface BackupOptions {
  tags?: string[];
  /** When the data was captured (default: the clock's now at the start). */
  time?: Date;
  hostname?: string;
  /** Compare against this snapshot instead of the latest of the same VM; null for none. */
  parent?: Snapshot | null;
  signal?: AbortSignal;
  onProgress?: (progress: BackupProgress) => void;
  /** Injected clock (tests). */
  clock?: () => Date;
  /**
   * The backup lease (leases.ts), when the caller took it already — before capturing a live
   * VM, so no capture waits for a prune. Otherwise the backup takes and releases its own.
   */
  lease?: HeldLease;
  /** How long to wait for a running prune to end before giving up (`E_REPO_BUSY`); default 30 minutes. */
  waitForPruneMs?: number;
  /** Told when the backup waits for a prune. */
  onWait?: (reason: string) => void;
  /**
   * Hash this fraction (0..1) of the blocks a source's own change tracking (dirty bitmap,
   * given ranges) calls unchanged and compare them with the parent; on any mismatch, read
   * that disk in full and say so in the snapshot.
   */
  verifyUnchanged?: number;
  /**
   * The directory of this host's caches (`$XDG_CACHE_HOME/coffer`): each disk's block
   * fingerprints are kept there (block-fingerprints.ts), so that the next backup of a disk
   * without change tracking hashes only the blocks that changed. None: every block read is hashed.
   */
  cacheDirectory?: string;
}

/**
 * The snapshot a backup of `vm`'s disks compares with by default: its newest snapshot of
 * disks. A file snapshot recorded under the same name (`backup --files --host NAME`) has no
 * disk to compare with: taken as the parent, it made the next disk backup read and hash every
 * block again, and a live one start over without its checkpoints.
 */
export async function latestDiskSnapshot(repo: Repository, vm: string): Promise<Snapshot | null> {
  return (await listSnapshots(repo, { vm, onDamaged: skipDamaged })).filter((snapshot) => snapshot.files === undefined).at(-1) ?? null;
}

/**
 * Backs up every disk of a VM into one snapshot. The parent (by default the latest disk
 * snapshot of the same VM, {@link latestDiskSnapshot}) is the dedup fast path: a block whose hash equals the parent's entry costs
 * no lookup; and when the parent read the files that now back the disk's image chain,
 * untouched since, only what the layers above them allocate is read (chain-tracking.ts). Chunks and index pages are stored first, the manifest last: if anything fails
 * (or the run is aborted or killed) there is no snapshot, and what was stored is reused by
 * the next run.
 */
export async function backupVm(repo: Repository, source: VmSource, options: BackupOptions = {}): Promise<Snapshot> {
  const clock = options.clock ?? (() => new Date());
  const started = clock();
  if (source.disks.length === 0) throw new CofferError('E_USAGE', `VM ${source.vm} has no disks to back up`);
  // A prune must not run while this backup's chunks are referenced by no manifest yet.
  if (options.lease !== undefined) return backupWithLease(repo, source, options, started, options.lease);
  const lease = await acquireBackupLease(repo, {
    ...(options.waitForPruneMs !== undefined ? { waitMs: options.waitForPruneMs } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    onWait: (holders) => options.onWait?.(`waiting for a prune to end (${holders.map((h) => `${h.host}, pid ${h.pid}`).join('; ')})`),
  });
  try {
    return await backupWithLease(repo, source, options, started, lease);
  } finally {
    await lease.release().catch(() => {});
  }
}

async function backupWithLease(repo: Repository, source: VmSource, options: BackupOptions, started: Date, lease: HeldLease): Promise<Snapshot> {
  const parent = options.parent === undefined ? await latestDiskSnapshot(repo, source.vm) : options.parent;
  const damaged = await listQuarantined(repo);
  const known = new KnownChunks();
  // Each disk's block size: a tracked disk's granularity in format 2 (tracked-block-size.ts).
  const blockSizes = source.disks.map((disk) => blockSizeForDisk(repo.config, disk.changeGranularity));
  // Format 2: new chunks go into packs; one writer for the run, one index segment at its end.
  const packed = repo.config.version === 2 ? new PackedChunks(repo, undefined, { blocksPerFrame: blocksPerFrameFor(repo.config, blockSizes) }) : undefined;
  // Format 2: which packs prunes removed since the parent, read once the lease is held (no prune
  // removes one until this backup ends); the snapshot records how far it looked.
  const removals = packed === undefined ? undefined : await packRemovalsSince(repo, parent?.prunedThrough);
  // Written once the snapshot is saved; dropped if it never is (the parent's stay).
  const fingerprints: BlockFingerprints[] = [];
  try {
    const snapshot = await backupDisks(repo, source, options, { parent, damaged, known, blockSizes, packed, removals, started, lease, fingerprints });
    for (const cache of fingerprints.splice(0)) cache.commit(snapshot.id);
    if (options.cacheDirectory !== undefined) BlockFingerprints.sweep(options.cacheDirectory);
    // The snapshot stands whatever happens next; a checkpoint the source fails to drop now is
    // dropped by its next successful commit.
    await source.commit?.().catch(() => {});
    return snapshot;
  } finally {
    for (const cache of fingerprints) cache.discard();
  }
}

/** What {@link backupWithLease} found before the disks are read. */
interface RunContext {
  parent: Snapshot | null;
  damaged: ReadonlySet<string>;
  known: KnownChunks;
  blockSizes: number[];
  packed: PackedChunks | undefined;
  removals: Awaited<ReturnType<typeof packRemovalsSince>> | undefined;
  started: Date;
  lease: HeldLease;
  /** The disks' fingerprint caches, added to as they are opened. */
  fingerprints: BlockFingerprints[];
}

/** Backs up every disk and saves the snapshot. */
async function backupDisks(repo: Repository, source: VmSource, options: BackupOptions, context: RunContext): Promise<Snapshot> {
  const { parent, damaged, known, blockSizes, packed, removals, started, lease } = context;
  const clock = options.clock ?? (() => new Date());
  const vmBytesTotal = source.disks.reduce((sum, disk) => sum + disk.device.size, 0);
  let vmBytesBefore = 0;
  // The parent's parent, read once and only when a disk's older fingerprints describe it:
  // blocks back to what they were then are not hashed.
  let grandparent: Promise<Snapshot | undefined> | undefined;
  const grandparentSnapshot = (id: string) => (grandparent ??= loadSnapshot(repo, id).catch(() => undefined));
  const disks: DiskRecord[] = [];
  const totals = { bytesLogical: 0, bytesRead: 0, bytesNew: 0, bytesStored: 0 };
  for (const [i, disk] of source.disks.entries()) {
    const parentDisk = parent?.disks.find((candidate) => candidate.name === disk.name);
    const unchangedFrom = unchangedFromLayer(parentDisk?.layers, disk.layers);
    const device = unchangedFrom === undefined ? disk.device : withChangesAboveLayer(disk.device, unchangedFrom);
    const blockSize = blockSizes[i] as number;
    let tracking = changeTrackingOf(disk, parentDisk, unchangedFrom !== undefined, blockSize);
    if (options.verifyUnchanged !== undefined && parentDisk !== undefined && (tracking.method === 'dirty-bitmap' || tracking.method === 'changed-ranges')) {
      const mismatch = await verifyUnchangedSample(repo, device, new DiskIndexReader(repo, parentDisk), options.verifyUnchanged);
      if (mismatch !== undefined) tracking = { method: 'none', reason: `--verify-unchanged: ${mismatch}; read in full`, ...(disk.checkpoint ? { checkpoint: disk.checkpoint } : {}) };
    }
    const grandparentId = parentDisk === undefined ? null : parent?.parent ?? null;
    const cache = options.cacheDirectory === undefined
      ? undefined
      : BlockFingerprints.open(options.cacheDirectory, { repository: repo.config.id, vm: source.vm, disk: disk.name }, { size: device.size, blockSize }, {
          parent: parentDisk === undefined ? undefined : parent?.id,
          grandparent: grandparentId ?? undefined,
        });
    if (cache !== undefined) context.fingerprints.push(cache);
    const grandparentDisk = cache?.hasOlder === true && grandparentId !== null ? (await grandparentSnapshot(grandparentId))?.disks.find((candidate) => candidate.name === disk.name) : undefined;
    const { record, progress } = await backupDisk(repo, device, {
      fingerprints: cache,
      grandparent: grandparentDisk === undefined ? undefined : new DiskIndexReader(repo, grandparentDisk),
      name: disk.name,
      sourceFormat: disk.format,
      source: disk.location,
      parent: parentDisk === undefined ? undefined : new DiskIndexReader(repo, parentDisk),
      known,
      packed,
      removedSinceParent: removals?.since,
      damaged,
      trustChangeTracking: tracking.method !== 'none',
      blockSize,
      signal: options.signal,
      onProgress:
        options.onProgress === undefined
          ? undefined
          : (p) => options.onProgress?.({ ...p, vmBytesDone: vmBytesBefore + p.bytesDone, vmBytesTotal }),
    });
    vmBytesBefore += disk.device.size;
    disks.push({
      ...record,
      ...(disk.layers === undefined ? {} : { layers: disk.layers.map((layer) => ({ ...layer })) }),
      ...(tracking.method === 'none' && tracking.reason === undefined && disk.checkpoint === undefined ? {} : { changeTracking: tracking }),
    });
    totals.bytesLogical += record.size;
    totals.bytesRead += progress.bytesRead;
    totals.bytesNew += progress.bytesNew;
    totals.bytesStored += progress.bytesStored;
  }
  if (packed !== undefined) {
    const before = packed.writer.stored.bytes;
    await packed.writer.finish(); // the index segment of what this run added, before the manifest
    totals.bytesStored += packed.writer.stored.bytes - before;
  }
  if (options.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'backup interrupted before its snapshot was recorded');
  await source.confirm?.(); // a live capture held from its instant until every disk was read
  await lease.confirm(); // no prune presumed this backup dead and swept its chunks
  const time = options.time ?? started;
  return saveSnapshot(repo, {
    version: 1,
    vm: source.vm,
    time: time.toISOString(),
    hostname: options.hostname ?? osHostname(),
    tags: options.tags ?? [],
    parent: parent?.id ?? null,
    definition: source.definition === null ? null : { format: source.definition.format, data: Buffer.from(source.definition.data).toString('base64') },
    disks,
    stats: { ...totals, durationMs: Math.max(0, clock().getTime() - started.getTime()) },
    ...(source.consistency === undefined ? {} : { consistency: { ...source.consistency } }),
    ...(removals?.mark === undefined ? {} : { prunedThrough: removals.mark }),
  });
}

/**
 * Which change tracking a disk's backup may trust: the image chain (see chain-tracking.ts),
 * or the source's own (a dirty bitmap) when it runs from the checkpoint the parent recorded.
 * Anything else is a full read, with the reason kept in the snapshot.
 */
function changeTrackingOf(disk: SourceDisk, parentDisk: DiskRecord | undefined, chainUnchanged: boolean, blockSize: number): ChangeTrackingRecord {
  const checkpoint = disk.checkpoint === undefined ? {} : { checkpoint: disk.checkpoint };
  // An unchanged block reuses the parent's entry for the same bytes: only blocks of one size line up.
  if (parentDisk !== undefined && parentDisk.blockSize !== blockSize) {
    return { method: 'none', reason: `the parent snapshot cut this disk into ${kib(parentDisk.blockSize)} blocks, this backup into ${kib(blockSize)}: read in full once`, ...checkpoint };
  }
  if (chainUnchanged) return { method: 'image-chain', ...checkpoint };
  const offered = disk.changeTracking;
  if (offered === undefined) return { method: 'none', ...checkpoint };
  if ('unavailable' in offered) return { method: 'none', reason: offered.unavailable, ...checkpoint };
  if (parentDisk === undefined) return { method: 'none', reason: 'no parent snapshot of this disk', ...checkpoint };
  if ('givenRanges' in offered) {
    if (parentDisk.size !== disk.device.size) return { method: 'none', reason: 'the disk is not the size of the base snapshot\'s', ...checkpoint };
    return { method: 'changed-ranges', reason: `ranges from ${offered.givenRanges}`, ...checkpoint };
  }
  if (parentDisk.changeTracking?.checkpoint !== offered.since) {
    return { method: 'none', reason: `the parent snapshot did not leave checkpoint ${offered.since}`, ...checkpoint };
  }
  if (parentDisk.size !== disk.device.size) return { method: 'none', reason: 'the disk was resized', ...checkpoint };
  return { method: 'dirty-bitmap', ...checkpoint };
}

function kib(bytes: number): string {
  return `${bytes / 1024} KiB`;
}
