/**
 * The ext reader against debugfs (e2fsprogs) on real images made by mke2fs from the shared
 * tree, one per variant: every file, directory and link with its type, size, mode, owner,
 * mtime, inode number, content hash and link target; lookups through the htree; reads at
 * odd offsets; hard links and link counts; a file beyond 4 GiB, almost all holes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { RawImage } from '../../disk/index.js';
import {
  buildByteNamesExtImage, buildExtImage, BYTE_NAMES, debugfsTree, HUGE_SPARSE_FILE, requireTools, runTool, seededBytes, type ExtVariant,
} from '../../testing/index.js';
import { resolvePath, type Filesystem, type FsNode } from '../index.js';
import { encodeName, printableName } from '../../names/index.js';
import { extDriver } from './index.js';

const SMALL = { sizeMiB: 96, bigFileBytes: 3_000_000 };
const VARIANTS: { variant: ExtVariant; type: string; blockSize: number }[] = [
  { variant: 'ext4', type: 'ext4', blockSize: 4096 },
  { variant: 'ext4-inline', type: 'ext4', blockSize: 4096 },
  { variant: 'ext4-meta-bg', type: 'ext4', blockSize: 1024 },
  { variant: 'ext4-bigalloc-1k', type: 'ext4', blockSize: 1024 },
  { variant: 'ext4-bigalloc-1k-meta-bg', type: 'ext4', blockSize: 1024 },
  { variant: 'ext4-32bit', type: 'ext4', blockSize: 4096 },
  { variant: 'ext3', type: 'ext3', blockSize: 4096 },
  { variant: 'ext2-1k', type: 'ext2', blockSize: 1024 },
];

async function withFs<T>(image: string, body: (fs: Filesystem) => Promise<T>): Promise<T> {
  const device = await RawImage.open(image);
  try {
    assert.equal(await extDriver.probe(device), true);
    return await body(await extDriver.open(device));
  } finally {
    await device.close();
  }
}

interface Seen { node: FsNode; sha256?: string; target?: string; parent: FsNode; name: string }

/** Every node below the root, by relative path, read through the reader. */
async function walk(fs: Filesystem): Promise<Map<string, Seen>> {
  const root = await fs.root();
  const out = new Map<string, Seen>([['', { node: root, parent: root, name: '' }]]);
  const visit = async (dir: FsNode, rel: string): Promise<void> => {
    for (const entry of await fs.readdir(dir)) {
      assert.equal(entry.error, undefined, `${rel}/${entry.name}: ${entry.error?.message}`);
      const node = entry.node!;
      const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
      const seen: Seen = { node, parent: dir, name: entry.name };
      if (node.type === 'file') {
        const hash = createHash('sha256');
        for (let at = 0; at < node.size; at += 1 << 20) hash.update(await fs.read(node, at, 1 << 20));
        seen.sha256 = hash.digest('hex');
      }
      if (node.type === 'symlink') seen.target = await fs.readlink(node);
      out.set(child, seen);
      if (node.type === 'directory') await visit(node, child);
    }
  };
  await visit(root, '');
  return out;
}

for (const { variant, type, blockSize } of VARIANTS) {
  test(`${variant}: every node matches debugfs (type, size, mode, owner, mtime, inode, content, link target)`, async () => {
    await requireTools('mke2fs', 'e2fsck', 'debugfs');
    const image = await buildExtImage({ ...SMALL, variant });
    const oracle = await debugfsTree(image);
    try {
      await withFs(image, async (fs) => {
        assert.equal(fs.type, type);
        assert.equal(fs.blockSize, blockSize);
        assert.equal(fs.size, SMALL.sizeMiB * 1024 * 1024);
        assert.equal(fs.label, 'coffer-ext');
        assert.equal(fs.notice, undefined, 'every group descriptor checks (checksum, locations): nothing read around');
        const mine = await walk(fs);
        assert.deepEqual([...mine.keys()].sort(), [...oracle.nodes.keys()].sort());
        for (const [rel, expected] of oracle.nodes) {
          const seen = mine.get(rel)!;
          const n = seen.node;
          const got = {
            type: n.type, size: n.type === 'directory' ? expected.size : n.size, mode: n.mode, uid: n.uid, gid: n.gid,
            mtimeSeconds: Math.floor(n.mtimeMs / 1000), inode: Number(n.id), sha256: seen.sha256, target: seen.target,
          };
          const want = { ...expected, sha256: expected.sha256, target: expected.target };
          assert.deepEqual(got, want, rel);
        }
        // Link counts, derived from the oracle's tree: 2 + subdirectories, or the names of an inode.
        const namesOf = new Map<number, number>();
        for (const o of oracle.nodes.values()) namesOf.set(o.inode, (namesOf.get(o.inode) ?? 0) + 1);
        for (const [rel, seen] of mine) {
          const subdirs = [...oracle.nodes.entries()].filter(([p, o]) => o.type === 'directory' && path.dirname(p === '' ? '/' : p) === (rel === '' ? '.' : rel)).length;
          const expected = seen.node.type === 'directory' ? 2 + subdirs : namesOf.get(Number(seen.node.id));
          assert.equal(seen.node.nlink, expected, `nlink of ${rel || '/'}`);
        }
        assert.equal(mine.get('links/hard-link')!.node.id, mine.get('docs/notes.txt')!.node.id);
        // Every name is found by lookup (through the htree in many/ and wide/), and absent names are not.
        for (const [rel, seen] of mine) {
          if (rel === '') continue;
          assert.equal((await fs.lookup!(seen.parent, seen.name))?.id, seen.node.id, `lookup ${rel}`);
        }
        for (const dir of ['many', 'wide', 'docs', 'empty-dir', '']) {
          assert.equal(await fs.lookup!(mine.get(dir)!.node, 'entry-with-a-longer-name-999.txt'), undefined);
        }
        // Reads at odd offsets and lengths equal debugfs's extracted bytes.
        const big = mine.get('big.bin')!.node;
        const reference = await fsp.readFile(path.join(oracle.dir, 'big.bin'));
        for (const [at, length] of [[0, 1], [1023, 2], [4095, 4097], [123_457, 1_000_003], [2_999_990, 100], [3_000_000, 5], [5_000_000, 5]] as const) {
          assert.deepEqual(Buffer.from(await fs.read(big, at, length)), reference.subarray(at, at + length), `big.bin ${at}+${length}`);
        }
        // sparse.img: the holes the tree has (64 KiB pieces at 0, 1 MiB, 40 MiB) are holes here.
        const sparse = mine.get('sparse.img')!.node;
        const extents = [];
        for await (const e of fs.fileExtents!(sparse)) extents.push(e);
        const data = extents.filter((e) => e.kind === 'data').map((e) => [e.offset, e.length]);
        assert.deepEqual(data, [[0, 65536], [1 << 20, 65536], [40 << 20, 65536]]);
        assert.equal(extents.reduce((sum, e) => sum + e.length, 0), sparse.size);
      });
    } finally {
      await oracle.cleanup();
    }
  });
}

test('ext4-inline keeps small files and directories in the inode, and reads them', async () => {
  const image = await buildExtImage({ ...SMALL, variant: 'ext4-inline' });
  await withFs(image, async (fs) => {
    const root = await fs.root();
    const docs = (await fs.lookup!(root, 'docs'))!;
    const script = (await fs.lookup!(docs, 'script.sh'))!;
    assert.ok(script.attributes?.includes('inline'));
    assert.equal(new TextDecoder().decode(await fs.read(script, 0, 100)), '#!/bin/sh\necho restored\n');
    assert.equal(new TextDecoder().decode(await fs.read(script, 10, 4)), 'echo');
    // Every directory on the 24-level chain holds one entry: all inline.
    let dir = (await fs.lookup!(root, 'deep'))!;
    for (let level = 1; level <= 24; level++) {
      dir = (await fs.lookup!(dir, `d${String(level).padStart(2, '0')}`))!;
      assert.ok(dir.attributes?.includes('inline'), `deep level ${level}`);
    }
    assert.equal((await fs.readdir(dir)).map((e) => e.name).join(), 'leaf.txt');
    // Files of 61..160 bytes continue in the system.data attribute: many/ has some.
    const many = (await fs.lookup!(root, 'many'))!;
    const tails = (await fs.readdir(many)).filter((e) => e.node!.attributes?.includes('inline') && e.node!.size > 60);
    assert.ok(tails.length > 5, `${tails.length} inline files longer than i_block`);
  });
});

for (const variant of ['ext4', 'ext2-1k'] as const) {
  test(`${variant}: a ${HUGE_SPARSE_FILE.size}-byte sparse file reads beyond 4 GiB, its holes agree with debugfs bmap`, async () => {
    await requireTools('mke2fs', 'e2fsck', 'debugfs');
    const image = await buildExtImage({ ...SMALL, variant, hugeSparseFile: true });
    const stat = await runTool('debugfs', ['-R', `stat /${HUGE_SPARSE_FILE.path}`, image]);
    assert.match(stat, new RegExp(`Size: ${HUGE_SPARSE_FILE.size}\\b`));
    await withFs(image, async (fs) => {
      const root = await fs.root();
      const file = (await fs.lookup!((await fs.lookup!(root, 'huge'))!, 'sparse-5g.bin'))!;
      assert.equal(file.size, HUGE_SPARSE_FILE.size);
      for (const piece of HUGE_SPARSE_FILE.pieces) {
        const before = Math.min(piece.offset, 777);
        const got = await fs.read(file, piece.offset - before, before + piece.length + 999);
        const want = Buffer.concat([Buffer.alloc(before), seededBytes(piece.seed, piece.length)]);
        assert.deepEqual(Buffer.from(got.subarray(0, want.length)), want, `piece at ${piece.offset}`);
        assert.ok(got.subarray(want.length).every((b) => b === 0));
      }
      assert.equal((await fs.read(file, HUGE_SPARSE_FILE.size - 10, 100)).length, 10);
      assert.equal((await fs.read(file, 4 * 1024 ** 3, 1 << 20)).every((b) => b === 0), true);
      const extents = [];
      for await (const e of fs.fileExtents!(file)) extents.push(e);
      assert.equal(extents.reduce((sum, e) => sum + e.length, 0), HUGE_SPARSE_FILE.size);
      const data = extents.filter((e) => e.kind === 'data');
      assert.ok(data.length >= 3 && data.reduce((s, e) => s + e.length, 0) < 1 << 20, JSON.stringify(data));
      // Oracle: debugfs bmap of the first and last block of every extent (0 = hole).
      const bs = fs.blockSize;
      const probes = extents.flatMap((e) => [Math.floor(e.offset / bs), Math.floor((e.offset + e.length - 1) / bs)].map((block) => ({ block, kind: e.kind })));
      const out = await runTool('debugfs', ['-f', '-', image], probes.map((p) => `bmap /${HUGE_SPARSE_FILE.path} ${p.block}`).join('\n') + '\n');
      const answers = out.split('\n').filter((l) => /^\d+$/.test(l.trim())).map(Number);
      assert.equal(answers.length, probes.length);
      probes.forEach((p, i) => assert.equal(answers[i] !== 0, p.kind === 'data', `block ${p.block}`));
    });
  });
}

test('names that are not UTF-8 stay as distinct as the bytes on disk, and are found again by them', async () => {
  await requireTools('mke2fs');
  await withFs(await buildByteNamesExtImage(), async (fs) => {
    const root = await fs.root();
    const entries = await fs.readdir(root);
    const onDisk = entries.map((e) => encodeName(e.name).toString('hex')).sort();
    const expected = [BYTE_NAMES.latin1Acute, BYTE_NAMES.latin1Grave, BYTE_NAMES.utf8, BYTE_NAMES.ffFe, BYTE_NAMES.folder, BYTE_NAMES.link, BYTE_NAMES.backslashText, BYTE_NAMES.longest, BYTE_NAMES.control, Buffer.from('lost+found')]
      .map((b) => b.toString('hex')).sort();
    assert.deepEqual(onDisk, expected, 'every name encodes back to its bytes: none merged, none replaced by U+FFFD');
    const byHex = new Map(entries.map((e) => [encodeName(e.name).toString('hex'), e]));
    const read = async (node: FsNode): Promise<string> => Buffer.from(await fs.read(node, 0, node.size)).toString('utf8');
    assert.equal(await read(byHex.get(BYTE_NAMES.latin1Acute.toString('hex'))?.node as FsNode), 'latin1 e-acute\n');
    assert.equal(await read(byHex.get(BYTE_NAMES.latin1Grave.toString('hex'))?.node as FsNode), 'latin1 e-grave\n');
    const link = byHex.get(BYTE_NAMES.link.toString('hex'))?.node as FsNode;
    assert.deepEqual(encodeName(await fs.readlink(link)), BYTE_NAMES.latin1Acute, 'the link target keeps its bytes');
    // Found by the decoded name, and by the \xNN spelling a listing prints.
    const acute = entries.find((e) => encodeName(e.name).equals(BYTE_NAMES.latin1Acute))?.name as string;
    assert.equal(printableName(acute), 'caf\\xe9');
    assert.equal(await read((await resolvePath(fs, `/${acute}`)).node), 'latin1 e-acute\n');
    assert.equal(await read((await resolvePath(fs, '/caf\\xe8')).node), 'latin1 e-grave\n');
    assert.equal(await read((await resolvePath(fs, '/café')).node), 'utf-8\n');
    // The text `caf\xe9` beside the byte: each found by what a listing prints for it.
    const literal = entries.find((e) => encodeName(e.name).equals(BYTE_NAMES.backslashText))?.name as string;
    assert.equal(printableName(literal), 'caf\\\\xe9');
    assert.equal(await read((await resolvePath(fs, '/caf\\xe9')).node), 'latin1 e-acute\n', '\\xe9 is the byte, though a name holds that text');
    assert.equal(await read((await resolvePath(fs, '/caf\\\\xe9')).node), 'backslash text\n');
    assert.equal(await read((await resolvePath(fs, `/${'\\xe9'.repeat(255)}`)).node), '255 bytes\n');
    const inside = await resolvePath(fs, '/d\\xe9j\\xe0/x\\xb5');
    assert.equal(await read(inside.node), 'inside\n');
    assert.deepEqual(encodeName(inside.path), Buffer.concat([Buffer.from('/'), BYTE_NAMES.folder, Buffer.from('/'), BYTE_NAMES.inFolder]));
  });
});

test('the encrypt feature: what is not encrypted reads, an encrypted directory is refused on its own', async () => {
  await requireTools('mke2fs', 'debugfs');
  const work = await fsp.mkdtemp(path.join(tmpdir(), 'coffer-ext-encrypt-'));
  try {
    const src = path.join(work, 'src');
    await fsp.mkdir(path.join(src, 'plain'), { recursive: true });
    await fsp.mkdir(path.join(src, 'secret'));
    await fsp.writeFile(path.join(src, 'plain/readme.txt'), 'in the clear\n');
    await fsp.writeFile(path.join(src, 'secret/key.txt'), 'ciphertext on a real disk\n');
    const image = path.join(work, 'ext4.img');
    await fsp.writeFile(image, '');
    await fsp.truncate(image, 8 * 1024 * 1024);
    await runTool('mke2fs', ['-q', '-F', '-t', 'ext4', '-O', 'encrypt', '-d', src, image]);
    // Mark /secret as fscrypt does (EXT4_ENCRYPT_FL, 0x800), with its other flags kept.
    const flags = Number(/Flags: (0x[0-9a-f]+)/.exec(await runTool('debugfs', ['-R', 'stat /secret', image]))?.[1]);
    await runTool('debugfs', ['-w', '-R', `sif /secret flags 0x${(flags | 0x800).toString(16)}`, image]);
    await withFs(image, async (fs) => {
      const root = await fs.root();
      const entries = await fs.readdir(root);
      assert.deepEqual(entries.map((e) => e.name).sort(), ['lost+found', 'plain', 'secret']);
      const readme = (await resolvePath(fs, '/plain/readme.txt')).node;
      assert.equal(Buffer.from(await fs.read(readme, 0, readme.size)).toString(), 'in the clear\n');
      const secret = (await resolvePath(fs, '/secret')).node;
      assert.ok(secret.attributes?.includes('encrypted'));
      await assert.rejects(fs.readdir(secret), (error: Error & { code?: string }) => error.code === 'E_FS_UNSUPPORTED' && /encrypted \(fscrypt\)/.test(error.message));
    });
  } finally {
    await fsp.rm(work, { recursive: true, force: true });
  }
});
