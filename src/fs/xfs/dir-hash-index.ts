import { fsCorrupt } from '../fs-errors.js';
import { xfsCrcMatches } from './crc32c.js';

/**
 * The hash index of leaf and node directories, at logical byte 32 GiB of the directory
 * (block `2^35 / blocksize`). Every block starts with a v5 "da" header (struct
 * xfs_da3_blkinfo, then count and level/stale):
 * | offset | size | field  | meaning                                                     |
 * |-------:|-----:|--------|-------------------------------------------------------------|
 * |      0 |    4 | forw   | next block at this level (logical directory block, 0: none) |
 * |      4 |    4 | back   | previous block                                              |
 * |      8 |    2 | magic  | 0x3df1 LEAF1 (the one leaf of a leaf directory), 0x3dff     |
 * |        |      |        | LEAFN (a leaf of a node directory), 0x3ebe DA3 node          |
 * |     12 |    4 | crc    | CRC-32C of the block (little-endian)                        |
 * |     16 |    8 | blkno  | address in 512-byte sectors                                 |
 * |     48 |    8 | owner  | the directory's inode number                                |
 * |     56 |    2 | count  | entries                                                     |
 * |     58 |    2 | level  | (nodes) height above the leaves; (leaves) stale entries     |
 * Entries from byte 64, 8 bytes each, sorted by hash. Leaf: u32 hash, u32 address (the
 * entry's byte offset in the directory's data space / 8; 0 for a stale entry). Node: u32
 * greatest hash below, u32 logical block of the child.
 */
export const LEAF1_MAGIC = 0x3df1;
export const LEAFN_MAGIC = 0x3dff;
export const DA_NODE_MAGIC = 0x3ebe;
const HEADER_BYTES = 64;
const MAX_DEPTH = 8;
/** Leaves followed along `forw` for one hash (collisions are rare; a loop is not). */
const MAX_LEAVES = 64;

/** The name hash of XFS directories (xfs_da_hashname): 7-bit rotations of byte groups. */
export function xfsNameHash(name: Uint8Array): number {
  const rol = (x: number, n: number): number => ((x << n) | (x >>> (32 - n))) >>> 0;
  let hash = 0;
  let i = 0;
  for (; name.length - i >= 4; i += 4) {
    hash = ((name[i] as number) << 21) ^ ((name[i + 1] as number) << 14) ^ ((name[i + 2] as number) << 7) ^ (name[i + 3] as number) ^ rol(hash, 28);
    hash >>>= 0;
  }
  const left = name.length - i;
  if (left === 3) return (((name[i] as number) << 14) ^ ((name[i + 1] as number) << 7) ^ (name[i + 2] as number) ^ rol(hash, 21)) >>> 0;
  if (left === 2) return (((name[i] as number) << 7) ^ (name[i + 1] as number) ^ rol(hash, 14)) >>> 0;
  if (left === 1) return ((name[i] as number) ^ rol(hash, 7)) >>> 0;
  return hash;
}

/** One "da" block, checked (CRC, owner, count), with its entries as pairs. */
interface DaBlock {
  magic: number;
  forw: number;
  level: number;
  entries: { hash: number; value: number }[];
}

function parseDaBlock(block: Uint8Array, owner: bigint, what: string): DaBlock {
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const magic = view.getUint16(8);
  if (magic !== LEAF1_MAGIC && magic !== LEAFN_MAGIC && magic !== DA_NODE_MAGIC) throw fsCorrupt('xfs', `${what}: bad magic 0x${magic.toString(16)}`);
  if (!xfsCrcMatches(block, 12)) throw fsCorrupt('xfs', `${what}: checksum mismatch`);
  if (view.getBigUint64(48) !== owner) throw fsCorrupt('xfs', `${what}: belongs to inode ${view.getBigUint64(48)}`);
  const count = view.getUint16(56);
  if (HEADER_BYTES + count * 8 > block.length) throw fsCorrupt('xfs', `${what}: ${count} entries do not fit`);
  const entries: { hash: number; value: number }[] = [];
  for (let i = 0; i < count; i++) entries.push({ hash: view.getUint32(HEADER_BYTES + i * 8), value: view.getUint32(HEADER_BYTES + i * 8 + 4) });
  return { magic, forw: view.getUint32(0), level: view.getUint16(58), entries };
}

/**
 * The data addresses (byte offsets in the directory's data space) of the entries whose
 * name hashes to `hash`, found by descending the index from `rootBlock` (the logical block
 * at 32 GiB). `readBlock` reads one directory block by logical block number.
 */
export async function hashCandidates(
  hash: number,
  rootBlock: number,
  readBlock: (logicalBlock: number) => Promise<Uint8Array>,
  owner: bigint,
): Promise<number[]> {
  let blockNumber = rootBlock;
  let block = parseDaBlock(await readBlock(blockNumber), owner, `directory ${owner} index block ${blockNumber}`);
  for (let depth = 0; block.magic === DA_NODE_MAGIC; depth++) {
    if (depth >= MAX_DEPTH || block.level < 1) throw fsCorrupt('xfs', `directory ${owner}: index deeper than ${MAX_DEPTH} levels or with a bad level`);
    const child = block.entries.find((e) => e.hash >= hash);
    if (child === undefined) return [];
    const expectedLevel = block.level - 1;
    blockNumber = child.value;
    block = parseDaBlock(await readBlock(blockNumber), owner, `directory ${owner} index block ${blockNumber}`);
    if (block.magic === DA_NODE_MAGIC ? block.level !== expectedLevel : expectedLevel !== 0) throw fsCorrupt('xfs', `directory ${owner}: index block ${blockNumber} at the wrong level`);
  }
  const out: number[] = [];
  const seen = new Set<number>([blockNumber]);
  for (let leaves = 0; ; leaves++) {
    for (const e of block.entries) if (e.hash === hash && e.value !== 0) out.push(e.value * 8);
    const last = block.entries[block.entries.length - 1];
    if (last === undefined || last.hash !== hash || block.forw === 0 || leaves >= MAX_LEAVES || seen.has(block.forw)) return out;
    blockNumber = block.forw;
    seen.add(blockNumber);
    block = parseDaBlock(await readBlock(blockNumber), owner, `directory ${owner} index block ${blockNumber}`);
    if (block.magic === DA_NODE_MAGIC) throw fsCorrupt('xfs', `directory ${owner}: leaf ${blockNumber} is a node`);
  }
}
