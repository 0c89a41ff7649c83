/**
 * NTFS fixtures made by the real tools, without mounting: `mkntfs` formats a file,
 * `wimlib-imagex capture` then `apply` writes the shared tree ({@link writeFsTree}) into it
 * (names, mtimes, holes, hard links; Linux symlinks become symlink reparse points, absolute
 * ones as `\??\C:\…`), `ntfscp -N` adds named streams, and `ntfsfix -n` checks the result.
 */
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { cachedFixture, requireTools, runTool } from './disks.js';
import { writeFsTree } from './fs-tree.js';

/** Options of {@link buildNtfsImage}. */
export interface NtfsImageOptions {
  /** Size of the image (the whole file is the volume, its last sector the backup boot sector). */
  sizeMiB: number;
  /** Size of `big.bin` (default 150 MB, as in writeFsTree). */
  bigFileBytes?: number;
  /** Cluster size in bytes, 512 … 2 MiB (default 4096, mkntfs's choice for such volumes). */
  clusterSize?: number;
  /** Volume label (default `CofferNTFS`). */
  label?: string;
}

/** The named streams {@link buildNtfsImage} adds, by path, stream name and content. */
export const NTFS_STREAMS: readonly { path: string; stream: string; content: string }[] = [
  { path: '/docs/readme.txt', stream: 'summary', content: 'a short summary, kept in an alternate data stream\n' },
  { path: '/docs/readme.txt', stream: 'Zone.Identifier', content: '[ZoneTransfer]\r\nZoneId=3\r\n' },
  { path: '/big.bin', stream: 'checksum', content: 'not really a checksum\n' },
];

/** The serial number written into every image (mkntfs picks a random one). */
export const NTFS_SERIAL = '0123456789ABCDEF';

/**
 * A raw image holding one NTFS volume over the whole file, populated from `writeFsTree`
 * plus {@link NTFS_STREAMS}, serial {@link NTFS_SERIAL}; cached by options. Returns its path.
 * @example
 * const image = await buildNtfsImage({ sizeMiB: 96, bigFileBytes: 3_000_000 });
 * // oracle: ntfsls -R -l -p / image; ntfscat image /docs/readme.txt
 */
export async function buildNtfsImage(options: NtfsImageOptions): Promise<string> {
  await requireTools('mkntfs', 'wimlib-imagex', 'ntfscp', 'ntfsfix');
  const o = { sizeMiB: options.sizeMiB, bigFileBytes: options.bigFileBytes ?? 150_000_000, clusterSize: options.clusterSize ?? 4096, label: options.label ?? 'CofferNTFS' };
  return cachedFixture(`ntfs-${o.sizeMiB}m-c${o.clusterSize}`, { kind: 'ntfs', recipe: 1, ...o, streams: NTFS_STREAMS }, async (tmp) => {
    const work = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-ntfs-'));
    try {
      const tree = path.join(work, 'tree');
      await fs.mkdir(tree);
      await writeFsTree(tree, { bigFileBytes: o.bigFileBytes });
      await fs.writeFile(tmp, '');
      await fs.truncate(tmp, o.sizeMiB * 1024 * 1024);
      await runTool('mkntfs', ['-F', '-Q', '-q', '-s', '512', '-c', String(o.clusterSize), '-L', o.label, tmp]);
      const wim = path.join(work, 'tree.wim');
      await runTool('wimlib-imagex', ['capture', tree, wim, 'tree', '--compress=none', '--no-acls']);
      await runTool('wimlib-imagex', ['apply', wim, '1', tmp]);
      for (const s of NTFS_STREAMS) {
        const source = path.join(work, 'stream');
        await fs.writeFile(source, s.content);
        await runTool('ntfscp', ['-q', '-N', s.stream, tmp, source, s.path]);
      }
      await setSerial(tmp);
      await runTool('ntfsfix', ['-n', tmp]);
    } finally {
      await fs.rm(work, { recursive: true, force: true });
    }
  });
}

/** Writes {@link NTFS_SERIAL} into the boot sector and its backup (the last sector). */
async function setSerial(image: string): Promise<void> {
  const serial = Buffer.from(NTFS_SERIAL, 'hex').reverse();
  const handle = await fs.open(image, 'r+');
  try {
    const { size } = await handle.stat();
    for (const at of [0, size - 512]) await handle.write(serial, 0, 8, at + 0x48);
  } finally {
    await handle.close();
  }
}

/**
 * The checked-in NTFS volume made through a FUSE mount of ntfs-3g (LZNT1-compressed files,
 * a junction, an attribute list, a fragmented file, a stream: see
 * src/testing/fixtures/README.md), decompressed once into the fixture cache. Returns its path.
 */
export function ntfsExtrasImage(): Promise<string> {
  return checkedInImage('ntfs-extras');
}

/**
 * The checked-in NTFS volume whose files carry alternate data streams of every kind (resident,
 * non-resident, compressed, sparse, 0 bytes, 64 KiB and one byte more, a name that is not
 * ASCII, forty spilling into extension records, on a folder, ntfs-3g's store of a Linux
 * attribute) and DOS attributes, made through a FUSE mount of ntfs-3g by
 * src/testing/fixtures/make-ntfs-streams.sh (its README lists them). Returns its path.
 */
export function ntfsStreamsImage(): Promise<string> {
  return checkedInImage('ntfs-streams');
}

/** src/testing/fixtures/NAME.img.gz, decompressed once into the fixture cache (keyed by its digest). */
async function checkedInImage(name: string): Promise<string> {
  // Compiled to dist/src/testing/: the fixture stays in the sources.
  const gz = path.resolve(path.dirname(fileURLToPath(import.meta.url)), `../../../src/testing/fixtures/${name}.img.gz`);
  const packed = await fs.readFile(gz);
  const digest = createHash('sha256').update(packed).digest('hex');
  return cachedFixture(name, { kind: name, digest }, (tmp) => fs.writeFile(tmp, gunzipSync(packed)));
}
