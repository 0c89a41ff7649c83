/**
 * Damage reports name the files: a GPT disk holding ext4, FAT32, NTFS and XFS is backed up,
 * then in each filesystem the chunk holding a block of big.bin (found from the file's place
 * on its volume plus the partition's offset, and checked to hold big.bin's bytes) is
 * damaged in the repository. `coffer test-restore` names big.bin under each unreadable block,
 * and `coffer verify --read-data` names exactly big.bin in each volume, with the file bytes
 * that block held. On an LVM disk, damage is traced through the logical volume's segments.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { RawImage } from '../disk/index.js';
import { openFilesystem, resolvePath } from '../fs/index.js';
import { buildFilesVmDisk, buildLvmOneDisk, lvPlacement, requireTools, seededBytes, type FilesVmDisk } from '../testing/index.js';
import { listVolumes } from '../volume/index.js';
import { assertExit, chunkPath, coffer, cofferJson, makeWorkDir, removeDir, type BackupJson, type VerifyJson } from './cli-harness.js';

const BIG = 3_000_000;

interface Damaged {
  volume: string;
  type: string;
  /** The disk block whose chunk is damaged. */
  diskOffset: number;
  /** Where that block lies in big.bin. */
  fileOffset: number;
}

interface VolumeDamageJson {
  volume: string;
  filesystem?: string;
  ranges: { offset: number; length: number }[];
  files: { path: string; type: string; ranges: { offset: number; length: number }[]; metadata?: string[]; hits: number[] }[];
  unknown: { path: string; error: string }[];
  truncated: boolean;
  problem?: string;
}
type VerifyWithFiles = Omit<VerifyJson, 'affected'> & { affected: (VerifyJson['affected'][number] & { files?: VolumeDamageJson[]; filesProblem?: string })[] };

let work: string;
let repo: string;
let disk: FilesVmDisk;
let blockSize: number;
let snapshot: string;
const damaged: Damaged[] = [];

/** Flips a byte in the middle of the stored chunk holding `block` (an unencrypted repository's chunk id is the SHA-256 of its bytes). */
async function damageChunkOf(repository: string, block: Uint8Array): Promise<void> {
  const file = chunkPath(repository, createHash('sha256').update(block).digest('hex'));
  const blob = await readFile(file);
  const at = Math.floor(blob.length / 2);
  blob[at] = blob[at]! ^ 0x01;
  await writeFile(file, blob);
}

/** Every whole block (of the repository's block size) that lies in big.bin's data on this filesystem, with the disk offset and big.bin offset of each. */
async function bigBinBlocks(f: FilesVmDisk['filesystems'][number]): Promise<Damaged[]> {
  const device = await RawImage.open(f.image);
  const out: Damaged[] = [];
  try {
    const fs = await openFilesystem(device);
    assert.ok(fs, `${f.volume}: a filesystem`);
    const { node } = await resolvePath(fs, '/big.bin');
    for await (const e of fs.physicalExtents!(node)) {
      if (e.kind !== 'data') continue;
      const start = f.offset + e.deviceOffset;
      for (let block = Math.ceil(start / blockSize) * blockSize; block + blockSize <= start + e.length; block += blockSize) {
        out.push({ volume: f.volume, type: f.type, diskOffset: block, fileOffset: e.fileOffset + (block - start) });
      }
    }
  } finally {
    await device.close();
  }
  return out;
}

before(async () => {
  await requireTools('sfdisk', 'mke2fs', 'mformat', 'mcopy', 'mkntfs', 'wimlib-imagex', 'mkfs.xfs');
  work = await makeWorkDir('damaged-files');
  repo = join(work, 'repo');
  disk = await buildFilesVmDisk({ table: 'gpt', bigFileBytes: BIG });
  // Unencrypted: a chunk's id is the SHA-256 of its bytes, so the block's chunk is found from the disk alone.
  // Format 1 (one object per chunk): this file's tests look at or damage chunk objects; format 2's own are in format2*.integ.test.ts.
  blockSize = (await cofferJson<{ blockSize: number }>(['init', '--format', '1', '-r', repo, '--insecure-no-encryption'])).blockSize;
  snapshot = (await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'files', disk.path], { timeoutMs: 300_000 })).id;
  const big = seededBytes(150_000, BIG);
  const image = await RawImage.open(disk.path);
  // One block of big.bin per filesystem, at big.bin offsets at least two blocks apart. The same
  // big.bin bytes, block-aligned in another filesystem too, are the same chunk: those blocks
  // are damaged with it, and expected in the reports.
  const candidates: Damaged[] = [];
  const chosen = new Set<number>();
  for (const f of disk.filesystems) {
    const blocks = await bigBinBlocks(f);
    candidates.push(...blocks);
    const pick = blocks.find((b) => [...chosen].every((x) => Math.abs(x - b.fileOffset) >= 2 * blockSize));
    assert.ok(pick, `${f.volume}: a block of big.bin far from the others`);
    chosen.add(pick.fileOffset);
    const block = Buffer.from(await image.read(pick.diskOffset, blockSize));
    // The disk really holds big.bin's bytes there: the mapping is checked against the content.
    assert.ok(block.equals(big.subarray(pick.fileOffset, pick.fileOffset + blockSize)), `${f.volume}: the block at ${pick.diskOffset} is big.bin at ${pick.fileOffset}`);
    await damageChunkOf(repo, block);
  }
  await image.close();
  damaged.push(...candidates.filter((c) => chosen.has(c.fileOffset)).sort((a, b) => a.diskOffset - b.diskOffset));
});
after(() => removeDir(work));

test('test-restore names big.bin under each unreadable block, in the volume that holds it', async () => {
  const run = await coffer(['test-restore', '-r', repo, snapshot, '--no-fsck', '--json'], { timeoutMs: 300_000 });
  assertExit(run, 15);
  const report = JSON.parse(run.stdout.toString('utf8')) as { disks: { unreadable: { offset: number; length: number; files?: { volume: string; path: string }[] }[]; filesUnknown?: string[] }[] };
  const unreadable = report.disks[0]!.unreadable;
  const fileRanges = (volume: string) => damaged.filter((d) => d.volume === volume).map((d) => ({ offset: d.fileOffset, length: blockSize })).sort((a, b) => a.offset - b.offset);
  assert.deepEqual(unreadable.map((u) => [u.offset, u.files]), damaged.map((d) => [d.diskOffset, [{ volume: d.volume, path: '/big.bin', ranges: fileRanges(d.volume) }]]));
  assert.equal(report.disks[0]!.filesUnknown, undefined);
  const text = await coffer(['test-restore', '-r', repo, snapshot, '--no-fsck'], { timeoutMs: 300_000 });
  for (const d of damaged) assert.match(text.stdout.toString('utf8'), new RegExp(`UNREADABLE bytes ${d.diskOffset}-${d.diskOffset + blockSize - 1}: .*\\n    FILE ${d.volume}: /big.bin\\n`));
});

test('verify --read-data names exactly big.bin in each volume, with the bytes the damaged block held', async () => {
  const run = await coffer(['verify', '-r', repo, '--read-data', '--json'], { timeoutMs: 300_000 });
  assertExit(run, 13);
  const report = JSON.parse(run.stdout.toString('utf8')) as VerifyWithFiles;
  assert.equal(report.affected.length, 1);
  const hit = report.affected[0]!;
  assert.deepEqual(hit.ranges, damaged.map((d) => ({ start: d.diskOffset, end: d.diskOffset + blockSize })));
  assert.equal(hit.filesProblem, undefined);
  const expected = disk.filesystems.filter((f) => damaged.some((d) => d.volume === f.volume)).map((f) => {
    const mine = damaged.map((d, i) => ({ ...d, i })).filter((d) => d.volume === f.volume);
    return {
      volume: f.volume,
      ranges: mine.map((d) => ({ offset: d.diskOffset - f.offset, length: blockSize })),
      files: [{ path: '/big.bin', type: 'file', ranges: mine.map((d) => ({ offset: d.fileOffset, length: blockSize })).sort((a, b) => a.offset - b.offset), hits: mine.map((d) => d.i) }],
      unknown: [],
      truncated: false,
      filesystem: f.type,
    };
  });
  assert.equal(expected.length, 4, 'every filesystem is hit');
  assert.deepEqual(hit.files, expected);
  // The damaged chunks are now in quarantine: the text report names the same files, and --no-files leaves them out.
  const text = (await coffer(['verify', '-r', repo, '--read-data'], { timeoutMs: 300_000 })).stdout.toString('utf8');
  for (const d of damaged) assert.match(text, new RegExp(`\\n  FILE ${d.volume} ${d.type}: /big.bin \\(bytes [^)]*\\b${d.fileOffset}-${d.fileOffset + blockSize - 1}\\b`));
  const bare = await coffer(['verify', '-r', repo, '--no-files'], { timeoutMs: 300_000 });
  assertExit(bare, 13);
  assert.doesNotMatch(bare.stdout.toString('utf8'), /FILE/);
});

test('on an LVM disk, damage is traced through the logical volumes: a folder of the ext4 in one, raw data in another', async () => {
  await requireTools('sfdisk', 'mke2fs', 'losetup', 'pvcreate', 'vgcreate', 'lvcreate', 'lvs', 'vgcfgrestore');
  const { disks, oracle } = await buildLvmOneDisk();
  const lvmRepo = join(work, 'lvm-repo');
  await cofferJson(['init', '--format', '1', '-r', lvmRepo, '--insecure-no-encryption']);
  await cofferJson<BackupJson>(['backup', '-r', lvmRepo, '--vm', 'lvm', disks[0]!], { timeoutMs: 120_000 });
  const image = await RawImage.open(disks[0]!);
  try {
    const pvStart = (await listVolumes([image])).find((v) => v.name === 'p2')!.offset!;
    // Where LVM's own report puts the LVs: root's block at 1 MiB holds its ext4's root folder
    // (and lost+found); home's second block is seeded bytes, no filesystem.
    const rootAt = pvStart + lvPlacement(oracle, 'root').at + 1024 * 1024;
    const homeAt = pvStart + lvPlacement(oracle, 'home').at + blockSize;
    for (const at of [rootAt, homeAt]) await damageChunkOf(lvmRepo, await image.read(at, blockSize));
    const run = await coffer(['verify', '-r', lvmRepo, '--read-data', '--json'], { timeoutMs: 120_000 });
    assertExit(run, 13);
    const hit = (JSON.parse(run.stdout.toString('utf8')) as VerifyWithFiles).affected[0]!;
    assert.deepEqual(hit.ranges, [rootAt, homeAt].sort((a, b) => a - b).map((at) => ({ start: at, end: at + blockSize })));
    const byVolume = new Map(hit.files?.map((v) => [v.volume, v]));
    assert.deepEqual([...byVolume.keys()].sort(), ['coffer-one/home', 'coffer-one/root']);
    const root = byVolume.get('coffer-one/root')!;
    assert.deepEqual([root.filesystem, root.ranges], ['ext4', [{ offset: 1024 * 1024, length: blockSize }]]);
    assert.deepEqual(root.unknown.map((u) => u.path), ['/'], 'the root folder cannot be read: what is in it is unknown');
    const home = byVolume.get('coffer-one/home')!;
    assert.deepEqual([home.ranges, home.problem], [[{ offset: blockSize, length: blockSize }], 'no filesystem Coffer reads is on it']);
  } finally {
    await image.close();
  }
});
