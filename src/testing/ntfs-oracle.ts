/**
 * ntfs-3g's offline tools as the oracle for a file's streams and DOS attributes on an NTFS
 * image (`ntfsinfo -F`, `ntfscat -a 0x80 -n`), what ntfs-3g's mount would show of them as
 * extended attributes, and a way to damage one stream's attribute in a copy of an image.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { runTool } from './disks.js';

/** Every entry of ntfsStreamsImage() (src/testing/fixtures/make-ntfs-streams.sh). */
export const NTFS_STREAMS_PATHS = ['/download.exe', '/hidden.txt', '/sizes.txt', '/compressed', '/compressed/packed.txt', '/folder', '/many.txt', '/store.txt', '/plain.txt', '/normal.txt', '/sparse.bin'] as const;

/** What `ntfsinfo -F` says of a path: the record's directory flag, the $STANDARD_INFORMATION flags, the named $DATA streams with their sizes. */
export interface NtfsInfo {
  directory: boolean;
  flags: number;
  streams: Map<string, number>;
}

export async function ntfsInfo(image: string, file: string): Promise<NtfsInfo> {
  const out = await runTool('ntfsinfo', ['-F', file, image]);
  const blocks = out.split(/^Dumping attribute /m);
  const si = blocks.find((b) => b.startsWith('$STANDARD_INFORMATION'));
  const flags = /File attributes:.*\(0x([0-9a-f]+)\)/.exec(si ?? '')?.[1];
  if (flags === undefined) throw new Error(`ntfsinfo -F ${file}: no $STANDARD_INFORMATION flags in\n${out}`);
  const streams = new Map<string, number>();
  for (const b of blocks.filter((x) => x.startsWith('$DATA'))) {
    const name = /Attribute name:\s*'(.*)'/.exec(b)?.[1];
    if (name !== undefined) streams.set(name, Number(/Data size:\s*(\d+)/.exec(b)?.[1]));
  }
  return { directory: /^MFT Record Flags:.*\bDIRECTORY\b/m.test(out), flags: parseInt(flags, 16), streams };
}

/** `ntfscat`: a file's content, or with `stream` one of its named streams. */
export function ntfsCat(image: string, file: string, stream?: string): Promise<Buffer> {
  const options = stream === undefined ? [] : ['-a', '0x80', '-n', stream];
  return new Promise((resolve, reject) => {
    execFile('ntfscat', [...options, image, file], { encoding: 'buffer', maxBuffer: 64 << 20 }, (error, stdout) => (error ? reject(error) : resolve(stdout)));
  });
}

/** `system.ntfs_attrib_be` as ntfs-3g gives it (security.c, ntfs_get_ntfs_attrib): DIRECTORY set for a folder's record and cleared otherwise, NORMAL when nothing is left. */
export function ntfs3gAttrib(info: NtfsInfo): number {
  const flags = (info.directory ? info.flags | 0x10 : info.flags & ~0x10) >>> 0;
  return flags === 0 ? 0x80 : flags;
}

/**
 * Writes to `to` a copy of `image` whose one non-resident $DATA attribute named `name` was
 * changed by `change(view, offset of the attribute)`; checks that no byte changed where an MFT
 * record's fixups go (the last two of each sector), so the record still loads.
 */
export async function damageNtfsStream(image: string, name: string, to: string, change: (view: DataView, at: number) => void): Promise<void> {
  const bytes = await fs.readFile(image);
  const key = Buffer.from(name, 'utf16le');
  const hits: number[] = [];
  for (let p = bytes.indexOf(key); p !== -1; p = bytes.indexOf(key, p + 1)) {
    for (const nameOffset of [0x40, 0x48]) {
      const at = p - nameOffset; // 0x48 in compressed and sparse attributes (their header holds the compressed size)
      if (at >= 0 && bytes.readUInt32LE(at) === 0x80 && bytes[at + 8] === 1 && bytes[at + 9] === name.length && bytes.readUInt16LE(at + 10) === nameOffset) hits.push(at);
    }
  }
  assert.equal(hits.length, 1, `one non-resident $DATA attribute named ${name}`);
  const before = Buffer.from(bytes);
  change(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), hits[0]!);
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== before[i]) assert.ok(i % 512 < 510, 'no change where a fixup goes');
  await fs.writeFile(to, bytes);
}
