import type { BlockDevice } from '../../blockdev/index.js';
import { isCofferError } from '../../errors/index.js';
import type { Filesystem, FsDirEntry, FsFileExtent, FsNode, FsPhysicalExtent } from '../filesystem.js';
import { fsCorrupt, fsUnsupported } from '../fs-errors.js';
import { BOOT_SECTOR_SIZE, type FatGeometry, parseBootSector } from './boot-sector.js';
import { ChainIndex, type ClusterChain, followChain } from './cluster-chain.js';
import { ATTR_DIRECTORY, DIR_ENTRY_SIZE, decodeLabel, parseDirSlot } from './dir-entry.js';
import { entryNode, type FatNodeRef, foldName, nodeId, parseNodeId, rootNode } from './fat-node.js';
import { FatTable } from './fat-table.js';
import { LongNameAssembler, type NamedEntry } from './long-names.js';

/** A directory holds at most 65536 entries (fatgen103 §6): 2 MiB. */
const MAX_DIRECTORY_BYTES = 65536 * DIR_ENTRY_SIZE;
/** Bytes of a directory read at once. */
const DIRECTORY_PIECE_BYTES = 256 * 1024;
/** Parsed directories kept (LRU), so lookups during a walk do not re-read them. */
const MAX_CACHED_DIRECTORIES = 16;
/** Cluster chains kept (LRU), so reading a file piece by piece follows its chain once. */
const MAX_CACHED_CHAINS = 64;

interface Listing {
  readonly entries: readonly FsDirEntry[];
  /** Folded long and short names → index in `entries` (the first entry of a name wins). */
  readonly byName: ReadonlyMap<string, number>;
  /** The raw name of the first volume-label entry, if any. */
  readonly label?: Uint8Array;
}

/**
 * A FAT12/16/32 volume, read-only. Reads the FAT through a bounded page cache
 * ({@link FatTable}), follows cluster chains with loop detection ({@link followChain}), and
 * keeps a few parsed directories and chains. Concurrent calls are safe.
 */
export class FatFilesystem implements Filesystem {
  readonly caseInsensitive = true;
  readonly type;
  readonly size;
  readonly blockSize;
  readonly uuid;
  private readonly fat: FatTable;
  private readonly listings = new Map<string, Promise<Listing>>();
  private readonly chains = new Map<string, Promise<{ chain: ClusterChain; index: ChainIndex }>>();
  private readonly rootRef: FatNodeRef;
  private rootBytes = 0;
  private volumeLabel = '';

  private constructor(
    readonly device: BlockDevice,
    private readonly geometry: FatGeometry,
  ) {
    this.type = geometry.kind;
    this.size = geometry.volumeBytes;
    this.blockSize = geometry.clusterSize;
    this.uuid = geometry.serial;
    this.fat = new FatTable(device, geometry);
    this.rootRef = geometry.kind === 'fat32' ? { kind: 'directory', cluster: geometry.rootCluster } : { kind: 'fixed-root' };
  }

  /** Opens the FAT volume on `device`; E_FS_CORRUPT when its boot sector or root is unreadable. */
  static async open(device: BlockDevice): Promise<FatFilesystem> {
    if (device.size < BOOT_SECTOR_SIZE) throw fsCorrupt('fat', `a device of ${device.size} bytes cannot hold a boot sector`);
    const geometry = parseBootSector(await device.read(0, BOOT_SECTOR_SIZE), device.size);
    const fs = new FatFilesystem(device, geometry);
    if (geometry.kind === 'fat32') {
      const { chain } = await fs.directoryChain(geometry.rootCluster, 'root directory');
      fs.rootBytes = chain.clusters * geometry.clusterSize;
    } else {
      fs.rootBytes = geometry.rootDirBytes;
    }
    const root = await fs.listing(fs.rootRef);
    fs.volumeLabel = decodeLabel(root.label ?? geometry.bpbLabel);
    return fs;
  }

  /** The root directory's volume-label entry, else the boot sector's label. */
  get label(): string {
    return this.volumeLabel;
  }

  async root(): Promise<FsNode> {
    return rootNode(this.rootRef, this.rootBytes);
  }

  async readdir(directory: FsNode): Promise<FsDirEntry[]> {
    return [...(await this.listing(this.directoryRef(directory))).entries];
  }

  async lookup(directory: FsNode, name: string): Promise<FsNode | undefined> {
    const { byName, entries } = await this.listing(this.directoryRef(directory));
    const at = byName.get(foldName(name));
    if (at === undefined) return undefined;
    const entry = entries[at]!;
    if (entry.error) throw entry.error;
    return entry.node;
  }

  async read(file: FsNode, offset: number, length: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new RangeError(`bad read range ${offset}+${length}`);
    }
    const ref = this.fileRef(file);
    const end = Math.min(file.size, offset + length);
    if (offset >= end) return new Uint8Array(0);
    const out = new Uint8Array(end - offset);
    for await (const piece of this.pieces(ref, file, offset, end)) {
      await this.device.read(piece.deviceOffset, piece.length, out.subarray(piece.position - offset));
    }
    return out;
  }

  /**
   * Where file bytes `[offset, end)` lie on the device, in pieces of consecutive clusters (the
   * one mapping {@link read}, {@link fileExtents} and {@link physicalExtents} share).
   */
  private async *pieces(ref: FatNodeRef & { kind: 'file' }, file: FsNode, offset: number, end: number): AsyncGenerator<{ position: number; length: number; deviceOffset: number }> {
    const { clusterSize, dataOffset } = this.geometry;
    const { chain, index } = await this.fileChain(ref, file);
    for (let position = offset; position < end; ) {
      const found = index.locate(Math.floor(position / clusterSize));
      if (found === undefined) throw this.shortChainError(file, chain);
      const within = position % clusterSize;
      const length = Math.min(end - position, found.consecutive * clusterSize - within);
      yield { position, length, deviceOffset: dataOffset + (found.cluster - 2) * clusterSize + within };
      position += length;
    }
  }

  /**
   * FAT has no holes, but the device may know that clusters read as zeros (a snapshot's zero
   * chunks, a sparse image): those ranges are reported as `zero`, so a restore writes a
   * sparse file without reading them.
   */
  async *fileExtents(file: FsNode): AsyncIterable<FsFileExtent> {
    const ref = this.fileRef(file);
    if (file.size === 0) return;
    let pending: FsFileExtent | undefined;
    for await (const { position, length, deviceOffset } of this.pieces(ref, file, 0, file.size)) {
      for await (const extent of this.device.extents(deviceOffset, length)) {
        const piece: FsFileExtent = { offset: position + extent.offset - deviceOffset, length: extent.length, kind: extent.kind };
        if (pending && pending.kind === piece.kind && pending.offset + pending.length === piece.offset) {
          pending.length += piece.length;
        } else {
          if (pending) yield pending;
          pending = piece;
        }
      }
    }
    if (pending) yield pending;
  }

  /**
   * A file: its 32-byte directory entry (`metadata`: it holds the size and first cluster),
   * then its clusters. A directory: its clusters (the fixed FAT12/16 root: its area). The FAT
   * itself and long-name entries are not listed.
   */
  async *physicalExtents(node: FsNode): AsyncIterable<FsPhysicalExtent> {
    const ref = parseNodeId(node.id);
    if (ref.kind === 'file') {
      yield { kind: 'metadata', fileOffset: 0, fileLength: node.size, deviceOffset: ref.position, length: DIR_ENTRY_SIZE, what: 'directory entry' };
      if (node.size === 0) return;
      for await (const { position, length, deviceOffset } of this.pieces(ref, node, 0, node.size)) {
        yield { kind: 'data', fileOffset: position, fileLength: length, deviceOffset, length };
      }
    } else if (ref.kind === 'fixed-root') {
      const { rootDirOffset, rootDirBytes } = this.geometry;
      yield { kind: 'data', fileOffset: 0, fileLength: rootDirBytes, deviceOffset: rootDirOffset, length: rootDirBytes };
    } else {
      const { chain } = await this.directoryChain(ref.cluster, `directory ${node.id}`);
      const { clusterSize, dataOffset } = this.geometry;
      let fileOffset = 0;
      for (let i = 0; i < chain.starts.length; i++) {
        const length = chain.lengths[i]! * clusterSize;
        yield { kind: 'data', fileOffset, fileLength: length, deviceOffset: dataOffset + (chain.starts[i]! - 2) * clusterSize, length };
        fileOffset += length;
      }
    }
  }

  async readlink(link: FsNode): Promise<string> {
    throw fsUnsupported('fat', `${link.id}: FAT has no symbolic links`);
  }

  private directoryRef(node: FsNode): FatNodeRef {
    const ref = parseNodeId(node.id);
    if (node.type !== 'directory' || ref.kind === 'file') throw new RangeError(`${node.id} is not a directory`);
    return ref;
  }

  private fileRef(node: FsNode): FatNodeRef & { kind: 'file' } {
    const ref = parseNodeId(node.id);
    if (node.type !== 'file' || ref.kind !== 'file') throw new RangeError(`${node.id} is not a file`);
    return ref;
  }

  private shortChainError(file: FsNode, chain: ClusterChain): Error {
    return chain.error ?? fsCorrupt('fat', `file ${file.id}: ${file.size} bytes, but its cluster chain ends after ${chain.clusters * this.geometry.clusterSize}`);
  }

  /** The clusters holding a file's `size` bytes (its chain may be longer: the rest is ignored). */
  private fileChain(ref: FatNodeRef & { kind: 'file' }, file: FsNode): Promise<{ chain: ClusterChain; index: ChainIndex }> {
    const needed = Math.ceil(file.size / this.geometry.clusterSize);
    if (needed > this.geometry.clusterCount) {
      return Promise.reject(fsCorrupt('fat', `file ${file.id}: ${file.size} bytes do not fit in the volume`));
    }
    if (!this.validCluster(ref.cluster)) {
      return Promise.reject(fsCorrupt('fat', `file ${file.id}: first cluster ${ref.cluster} is outside the volume`));
    }
    return this.chain(ref.cluster, needed, `file ${file.id}`);
  }

  /** A directory's chain, at most 2 MiB long (longer is E_FS_CORRUPT, as a broken chain is). */
  private async directoryChain(cluster: number, what: string): Promise<{ chain: ClusterChain; index: ChainIndex }> {
    if (!this.validCluster(cluster)) throw fsCorrupt('fat', `${what}: first cluster ${cluster} is outside the volume`);
    const limit = Math.max(1, Math.floor(MAX_DIRECTORY_BYTES / this.geometry.clusterSize));
    const found = await this.chain(cluster, limit, what);
    if (found.chain.error) throw found.chain.error;
    if (found.chain.truncated) throw fsCorrupt('fat', `${what}: longer than ${MAX_DIRECTORY_BYTES} bytes`);
    return found;
  }

  private chain(first: number, limit: number, what: string): Promise<{ chain: ClusterChain; index: ChainIndex }> {
    const key = `${first}/${limit}`;
    const cached = this.chains.get(key);
    if (cached !== undefined) return touch(this.chains, key, cached);
    const pending = followChain(this.fat, first, limit, what).then((chain) => ({ chain, index: new ChainIndex(chain) }));
    pending.catch(() => this.chains.delete(key));
    return remember(this.chains, key, pending, MAX_CACHED_CHAINS);
  }

  private validCluster(cluster: number): boolean {
    return cluster >= 2 && cluster <= this.geometry.clusterCount + 1;
  }

  /** The parsed entries of a directory (cached). */
  private listing(ref: FatNodeRef): Promise<Listing> {
    const key = nodeId(ref);
    const cached = this.listings.get(key);
    if (cached !== undefined) return touch(this.listings, key, cached);
    const pending = this.readListing(ref);
    pending.catch(() => this.listings.delete(key));
    return remember(this.listings, key, pending, MAX_CACHED_DIRECTORIES);
  }

  private async readListing(ref: FatNodeRef): Promise<Listing> {
    const what = ref.kind === 'fixed-root' ? 'root directory' : `directory ${nodeId(ref)}`;
    const pieces: { offset: number; length: number }[] = [];
    if (ref.kind === 'fixed-root') {
      pieces.push({ offset: this.geometry.rootDirOffset, length: this.geometry.rootDirBytes });
    } else if (ref.kind === 'directory') {
      const { chain } = await this.directoryChain(ref.cluster, what);
      for (let i = 0; i < chain.starts.length; i++) {
        const offset = this.geometry.dataOffset + (chain.starts[i]! - 2) * this.geometry.clusterSize;
        pieces.push({ offset, length: chain.lengths[i]! * this.geometry.clusterSize });
      }
    }
    const assembler = new LongNameAssembler();
    const names: NamedEntry[] = [];
    let label: Uint8Array | undefined;
    const fat32 = this.geometry.kind === 'fat32';
    scan: for (const piece of pieces) {
      for (let done = 0; done < piece.length; done += DIRECTORY_PIECE_BYTES) {
        const offset = piece.offset + done;
        const data = await this.device.read(offset, Math.min(DIRECTORY_PIECE_BYTES, piece.length - done));
        for (let at = 0; at + DIR_ENTRY_SIZE <= data.length; at += DIR_ENTRY_SIZE) {
          const slot = parseDirSlot(data, at, fat32);
          if (slot.kind === 'end') break scan;
          if (slot.kind === 'volume-label' && label === undefined) label = slot.rawName;
          const named = assembler.push(slot, offset + at);
          if (named && named.name !== '.' && named.name !== '..') names.push(named);
        }
      }
    }
    const entries: FsDirEntry[] = [];
    const byName = new Map<string, number>();
    for (const named of names) {
      for (const key of [foldName(named.name), foldName(named.shortName)]) if (!byName.has(key)) byName.set(key, entries.length);
      entries.push(await this.entryOf(named));
    }
    return label === undefined ? { entries, byName } : { entries, byName, label };
  }

  /** The node of a named entry, or its error (the rest of the directory stays readable). */
  private async entryOf(named: NamedEntry): Promise<FsDirEntry> {
    const { entry, name, position } = named;
    try {
      if (entry.attributes & ATTR_DIRECTORY) {
        const ref: FatNodeRef = { kind: 'directory', cluster: entry.firstCluster };
        const { chain } = await this.directoryChain(entry.firstCluster, `directory ${JSON.stringify(name)} (entry at byte ${position})`);
        return { name, node: entryNode(entry, ref, chain.clusters * this.geometry.clusterSize) };
      }
      if (entry.firstCluster === 0 ? entry.size !== 0 : !this.validCluster(entry.firstCluster)) {
        throw fsCorrupt('fat', `file ${JSON.stringify(name)} (entry at byte ${position}): ${entry.size} bytes at cluster ${entry.firstCluster}`);
      }
      return { name, node: entryNode(entry, { kind: 'file', cluster: entry.firstCluster, position }, 0) };
    } catch (error) {
      if (isCofferError(error, 'E_FS_CORRUPT')) return { name, error };
      throw error;
    }
  }
}

function touch<T>(cache: Map<string, T>, key: string, value: T): T {
  cache.delete(key);
  cache.set(key, value);
  return value;
}

function remember<T>(cache: Map<string, T>, key: string, value: T, max: number): T {
  cache.set(key, value);
  if (cache.size > max) cache.delete(cache.keys().next().value as string);
  return value;
}
