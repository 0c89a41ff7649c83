/**
 * `physicalExtents` of every reader against each filesystem's own tools: where a file's (and a
 * directory's) blocks lie, as debugfs `ex`, mtools `mshowfat` (+ `minfo` geometry), ntfsinfo's
 * runlists and xfs_db `bmap` say; where its inode / MFT record lies, as debugfs `imap`, the
 * $MFT runlist and xfs_db `convert ino … byte` say. Then `findAffectedFiles` on a damaged
 * range names exactly the files whose blocks the tools place there, and a folder whose
 * blocks cannot be read (as a snapshot's disk fails over a damaged chunk) as unknown.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { BlockDevice } from '../blockdev/index.js';
import { RawImage } from '../disk/index.js';
import { CofferError } from '../errors/index.js';
import { buildExtImage, buildFatImage, buildNtfsImage, buildXfsImage, requireTools, runTool, xfsDbGeometry, xfsDbTree } from '../testing/index.js';
import { findAffectedFiles, openFilesystem, resolvePath, type Filesystem, type FsPhysicalExtent } from './index.js';

const BIG = 3_000_000;

/** What a tool says about one path: its data as `fileUnit:deviceUnit` pairs, and its record's byte offset. */
interface ToolView {
  unit: number;
  pairs: string[];
  /** Byte offset of the node's own record (inode, MFT record) on the device, where the tool tells. */
  record?: number;
  /** Content stored inside the record (NTFS resident data). */
  resident?: boolean;
}

interface Case {
  name: string;
  build: () => Promise<string>;
  tools: string[];
  paths: string[];
  oracle: (image: string, path: string) => Promise<ToolView>;
}

/** `fileUnit:deviceUnit` for each unit of a run of `count` units. */
function unitPairs(fileUnit: number, deviceUnit: number, count: number, limit = Infinity): string[] {
  const out: string[] = [];
  for (let i = 0; i < count && fileUnit + i < limit; i++) out.push(`${fileUnit + i}:${deviceUnit + i}`);
  return out;
}

const xfsTrees = new Map<string, Awaited<ReturnType<typeof xfsDbTree>>>();

const CASES: Case[] = [
  {
    name: 'ext4',
    build: () => buildExtImage({ sizeMiB: 96, bigFileBytes: BIG }),
    tools: ['debugfs'],
    paths: ['/big.bin', '/docs/notes.txt', '/sparse.img', '/many', '/deep/d01', '/many/entry-with-a-longer-name-150.txt'],
    async oracle(image, path) {
      const pairs: string[] = [];
      // Leaf rows (level = depth): `level/depth entry/entries logical - logical physical - physical length [Uninit]`.
      for (const m of (await runTool('debugfs', ['-R', `ex "${path}"`, image])).matchAll(/^\s*(\d+)\/\s*(\d+)\s+\d+\/\s*\d+\s+(\d+) -\s+\d+\s+(\d+) -\s+\d+\s+(\d+)\s*(\S*)$/gm)) {
        if (m[1] !== m[2] || m[6] === 'Uninit') continue;
        pairs.push(...unitPairs(Number(m[3]), Number(m[4]), Number(m[5])));
      }
      const imap = /located at block (\d+), offset 0x([0-9a-f]+)/.exec(await runTool('debugfs', ['-R', `imap "${path}"`, image]));
      assert.ok(imap, `debugfs imap ${path}`);
      return { unit: 4096, pairs, record: Number(imap[1]) * 4096 + parseInt(imap[2]!, 16) };
    },
  },
  {
    name: 'FAT32',
    build: () => buildFatImage({ sizeMiB: 128, fatBits: 32, bigFileBytes: BIG }),
    tools: ['mshowfat', 'minfo'],
    paths: ['/big.bin', '/docs/notes.txt', '/sparse.img', '/many', '/many/entry-with-a-longer-name-150.txt'],
    async oracle(image, path) {
      const info = await runTool('minfo', ['-i', image, '::']);
      const field = (re: RegExp): number => Number(re.exec(info)?.[1]);
      const sector = field(/sector size: (\d+) bytes/);
      const cluster = field(/cluster size: (\d+) sectors/) * sector;
      const dataOffset = (field(/reserved \(boot\) sectors: (\d+)/) + field(/fats: (\d+)/) * field(/Big fatlen=(\d+)/)) * sector;
      assert.equal(dataOffset % cluster, 0, 'this check needs a data area aligned to clusters');
      const shown = await runTool('mshowfat', ['-i', image, `::${path}`]);
      const pairs: string[] = [];
      let fileUnit = 0;
      for (const m of shown.matchAll(/<(\d+)(?:-(\d+))?>/g)) {
        const first = Number(m[1]);
        const count = (m[2] === undefined ? first : Number(m[2])) - first + 1;
        pairs.push(...unitPairs(fileUnit, dataOffset / cluster + first - 2, count));
        fileUnit += count;
      }
      return { unit: cluster, pairs };
    },
  },
  {
    name: 'NTFS',
    build: () => buildNtfsImage({ sizeMiB: 96, bigFileBytes: BIG }),
    tools: ['ntfsinfo'],
    paths: ['/big.bin', '/docs/notes.txt', '/sparse.img', '/many', '/docs/script.sh'],
    async oracle(image, path) {
      const sections = (text: string): string[] => text.split(/^Dumping attribute /m);
      const runs = (section: string): { vcn: number; lcn: number | null; length: number }[] =>
        [...section.matchAll(/^\t\t\t0x([0-9a-f]+)\t\t(0x[0-9a-f]+|<HOLE>)\t\t0x([0-9a-f]+)$/gm)].map((m) => ({
          vcn: parseInt(m[1]!, 16), lcn: m[2] === '<HOLE>' ? null : parseInt(m[2]!, 16), length: parseInt(m[3]!, 16),
        }));
      const info = await runTool('ntfsinfo', ['-v', '-F', path, image]);
      const cluster = Number(/Cluster Size:\s+(\d+)/i.exec(await runTool('ntfsinfo', ['-m', image]))?.[1]);
      const record = Number(/from mft record (\d+)/.exec(info)?.[1]);
      const mft = sections(await runTool('ntfsinfo', ['-v', '-i', '0', image])).find((s) => s.startsWith('$DATA (0x80)'));
      const mftRun = runs(mft ?? '')[0];
      assert.ok(mftRun?.lcn != null && mftRun.length * cluster >= (record + 1) * 1024, 'the record lies in the $MFT\'s first run');
      const wanted = path === '/many' ? '$INDEX_ALLOCATION (0xa0)' : '$DATA (0x80)';
      const section = sections(info).find((s) => s.startsWith(wanted) && /Name length:\s+(\d+)/.exec(s)?.[1] === (path === '/many' ? '4' : '0'));
      assert.ok(section, `ntfsinfo shows ${wanted} of ${path}`);
      const view: ToolView = { unit: cluster, pairs: [], record: mftRun.lcn * cluster + record * 1024 };
      if (/Resident:\s+Yes/.test(section)) return { ...view, resident: true };
      const size = Number(/Initialized size:\s+(\d+)/.exec(section)?.[1]);
      for (const run of runs(section)) if (run.lcn !== null) view.pairs.push(...unitPairs(run.vcn, run.lcn, run.length, Math.ceil(size / cluster)));
      return view;
    },
  },
  {
    name: 'XFS',
    build: () => buildXfsImage({ sizeMiB: 320, bigFileBytes: BIG }),
    tools: ['xfs_db'],
    paths: ['/big.bin', '/docs/notes.txt', '/sparse.img', '/many', '/wide', '/many/entry-with-a-longer-name-150.txt'],
    async oracle(image, path) {
      const tree = xfsTrees.get(image) ?? (await xfsDbTree(image));
      xfsTrees.set(image, tree);
      const { blockSize, agBlocks } = await xfsDbGeometry(image);
      const node = tree.get(path);
      assert.ok(node, `xfs_db knows ${path}`);
      const limit = node.type === 'directory' ? Infinity : Math.ceil(node.size / blockSize);
      const pairs = node.extents.filter((e) => !e.unwritten).flatMap((e) => unitPairs(e.fileBlock, e.agno * agBlocks + e.agbno, e.blocks, limit));
      const converted = /\((\d+)\)/.exec(await runTool('xfs_db', ['-r', '-c', `convert ino ${node.ino} byte`, image]));
      return { unit: blockSize, pairs, record: Number(converted?.[1]) };
    },
  },
];

/** Our view in the tool's units: data extents as unit pairs; the record's offset; whether content is packed in it. */
function ourView(extents: FsPhysicalExtent[], unit: number): { pairs: string[]; records: number[]; packed: FsPhysicalExtent[] } {
  const pairs: string[] = [];
  for (const e of extents.filter((x) => x.kind === 'data')) {
    assert.equal(e.fileOffset % unit, 0, 'data extents start on a unit');
    assert.equal(e.deviceOffset % unit, 0, 'and at a unit of the device');
    pairs.push(...unitPairs(e.fileOffset / unit, e.deviceOffset / unit, Math.ceil(e.length / unit)));
  }
  return { pairs, records: extents.filter((x) => x.kind === 'metadata').map((x) => x.deviceOffset), packed: extents.filter((x) => x.kind === 'packed') };
}

const opened: { device: RawImage; fs: Filesystem; image: string }[] = [];
after(async () => {
  for (const o of opened) await o.device.close();
});

for (const c of CASES) {
  let image: string;
  let fs: Filesystem;
  before(async () => {
    await requireTools(...c.tools);
    image = await c.build();
    const device = await RawImage.open(image);
    const found = await openFilesystem(device);
    assert.ok(found, `${c.name}: a filesystem`);
    fs = found;
    opened.push({ device, fs, image });
  });

  test(`${c.name}: physicalExtents places data and records where the filesystem's own tools do`, async () => {
    for (const path of c.paths) {
      const { node } = await resolvePath(fs, path);
      const extents: FsPhysicalExtent[] = [];
      for await (const e of fs.physicalExtents!(node)) extents.push(e);
      const tool = await c.oracle(image, path);
      const ours = ourView(extents, tool.unit);
      assert.deepEqual(ours.pairs, tool.pairs, `${c.name} ${path}: data blocks`);
      if (tool.record !== undefined) assert.deepEqual(ours.records, [tool.record], `${c.name} ${path}: its record`);
      if (tool.resident === true) {
        assert.deepEqual(ours.packed.map((p) => p.deviceOffset), [tool.record], `${c.name} ${path}: content inside its record`);
      } else {
        assert.equal(ours.packed.length, 0, `${c.name} ${path}: nothing packed`);
      }
      if (node.type === 'file') {
        const dataBytes = extents.filter((e) => e.kind === 'data').reduce((sum, e) => sum + e.length, 0);
        assert.ok(dataBytes <= node.size, `${c.name} ${path}: no slack past the end of the file`);
      }
      if (path === '/big.bin') assert.ok(tool.pairs.length >= Math.ceil(BIG / tool.unit), `${c.name}: the tool maps all of big.bin`);
      // FAT has no holes, and xfsprogs' protofile writes every byte: only ext4 and NTFS keep them.
      if (path === '/sparse.img' && (c.name === 'ext4' || c.name === 'NTFS')) assert.ok(tool.pairs.length * tool.unit < 64 << 20, `${c.name}: the tool leaves sparse.img's holes out`);
    }
  });

  test(`${c.name}: findAffectedFiles names the files whose blocks the tools place in a damaged range, with their offsets`, async () => {
    const big = (await c.oracle(image, '/big.bin'));
    const notes = (await c.oracle(image, '/docs/notes.txt'));
    const unit = big.unit;
    // One unit in the middle of big.bin, and the last unit of notes.txt plus a unit either side.
    const [bigFile, bigDevice] = big.pairs[Math.floor(big.pairs.length / 2)]!.split(':').map(Number) as [number, number];
    const [notesFile, notesDevice] = notes.pairs.at(-1)!.split(':').map(Number) as [number, number];
    const report = await findAffectedFiles(fs, [
      { offset: bigDevice * unit + 100, length: 10 },
      { offset: notesDevice * unit, length: unit },
    ]);
    assert.deepEqual(report.unknown, []);
    assert.equal(report.truncated, false);
    const byPath = new Map(report.files.map((f) => [f.path, f]));
    assert.deepEqual(byPath.get('/big.bin')?.ranges, [{ offset: bigFile * unit + 100, length: 10 }], `${c.name}: big.bin's damaged bytes`);
    assert.deepEqual(byPath.get('/big.bin')?.hits, [0]);
    const notesNode = (await resolvePath(fs, '/docs/notes.txt')).node;
    assert.deepEqual(byPath.get('/docs/notes.txt')?.ranges, [{ offset: notesFile * unit, length: notesNode.size - notesFile * unit }], `${c.name}: notes.txt's last unit, up to its end`);
    // Nothing else lies in those device ranges (a hard link of notes.txt is listed under its own name too).
    const others = report.files.filter((f) => f.path !== '/big.bin' && f.path !== '/docs/notes.txt');
    assert.deepEqual(others.map((f) => f.path).filter((p) => p !== '/links/hard-link'), [], `${c.name}: only those files`);
  });
}

/** The device, except that reading any byte of `bad` fails as a snapshot disk does over a damaged chunk. */
function withUnreadableRange(device: BlockDevice, bad: { offset: number; length: number }): BlockDevice {
  return {
    size: device.size,
    read: async (offset, length, into) => {
      if (offset < bad.offset + bad.length && bad.offset < offset + length) throw new CofferError('E_CORRUPT_OBJECT', `test damage at ${bad.offset}`);
      return device.read(offset, length, into);
    },
    extents: (offset, length) => device.extents(offset, length),
    close: async () => {},
  };
}

for (const c of CASES) {
  test(`${c.name}: a folder whose blocks cannot be read is reported, its files unknown, and the walk goes on`, async () => {
    await requireTools(...c.tools);
    const device = await RawImage.open(await c.build());
    try {
      const clean = (await openFilesystem(device))!;
      // /wide: its blocks lie apart from what opening reads (NTFS reads $UpCase, next to /many's index, in 64 KiB pieces).
      const wide = (await resolvePath(clean, '/wide')).node;
      let first: FsPhysicalExtent | undefined;
      for await (const e of clean.physicalExtents!(wide)) if (e.kind === 'data' && first === undefined) first = e;
      assert.ok(first, `${c.name}: /wide has blocks`);
      const bad = { offset: first.deviceOffset, length: 512 };
      const fs = (await openFilesystem(withUnreadableRange(device, bad)))!;
      const report = await findAffectedFiles(fs, [bad]);
      assert.deepEqual(report.unknown.map((u) => u.path), ['/wide'], `${c.name}: /wide is unknown`);
      assert.match(report.unknown[0]!.error, /test damage/);
      assert.deepEqual(report.files, [], `${c.name}: no other file lies there`);
      // The rest of the tree is still walked: a file in another folder is named.
      const notes = (await resolvePath(clean, '/docs/notes.txt')).node;
      let notesAt: number | undefined;
      for await (const e of clean.physicalExtents!(notes)) if (e.kind === 'data') notesAt ??= e.deviceOffset;
      const both = await findAffectedFiles(fs, [bad, { offset: notesAt!, length: 1 }]);
      assert.deepEqual(both.files.map((f) => f.path).filter((p) => p !== '/links/hard-link'), ['/docs/notes.txt'], `${c.name}: notes.txt still found`);
      assert.deepEqual(both.unknown.map((u) => u.path), ['/wide']);
    } finally {
      await device.close();
    }
  });
}
