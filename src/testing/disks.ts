/**
 * Real test disks, made by the real tools (sfdisk from `fdisk`, mke2fs and e2fsck from
 * `e2fsprogs`) and cached under {@link fixtureDir} so that every test file and every test
 * process reuses one build.
 *
 * Cache: a disk's file name is its `name` plus a hash of its recipe and options; a disk is
 * built into a temporary name and then hard-linked to its final name, which fails if another
 * process got there first (a rename that never replaces), so a path once returned always
 * names the same bytes. Rebuilds differ little: partition UUIDs, filesystem UUID and hash
 * seed come from the cache key, and times from `FIXED_TIME`, except the inodes' ctimes (which
 * `mke2fs -d` copies from the source files, where nothing can set them) and the checksums.
 */
import { execFile } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { createCipheriv, createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Part of every cache key: bump it when a recipe below changes. */
const RECIPE = 1;
const MiB = 1024 * 1024;
/** The times written into fixtures (2023-11-14T22:13:20Z and a little earlier). */
const FIXED_TIME = 1_700_000_000;
/** The Debian package of each tool tests may ask for. */
const PACKAGES: Record<string, string> = {
  sfdisk: 'fdisk', mke2fs: 'e2fsprogs', e2fsck: 'e2fsprogs', debugfs: 'e2fsprogs', cp: 'coreutils',
  'qemu-img': 'qemu-utils', 'qemu-io': 'qemu-utils', truncate: 'coreutils', stat: 'coreutils', 'qemu-nbd': 'qemu-utils', mformat: 'mtools',
  mcopy: 'mtools', mdir: 'mtools', mkntfs: 'ntfs-3g', ntfsls: 'ntfs-3g', ntfscat: 'ntfs-3g',
  'wimlib-imagex': 'wimtools', 'mkfs.xfs': 'xfsprogs', xfs_repair: 'xfsprogs', xfs_db: 'xfsprogs',
  nbdinfo: 'libnbd-bin', nbdcopy: 'libnbd-bin', jq: 'jq', '7zz': '7zip', unzip: 'unzip',
  'qemu-system-x86_64': 'qemu-system-x86', 'grub-fstest': 'grub-common',
  pvcreate: 'lvm2', vgcreate: 'lvm2', lvcreate: 'lvm2', lvs: 'lvm2', pvs: 'lvm2', vgs: 'lvm2', vgcfgbackup: 'lvm2',
  vgcfgrestore: 'lvm2', cryptsetup: 'cryptsetup-bin', losetup: 'mount', blkid: 'util-linux', env: 'coreutils',
  'fsck.fat': 'dosfstools',
  mmd: 'mtools',
  mdel: 'mtools',
  mattrib: 'mtools',
  ntfscp: 'ntfs-3g',
  ntfsfix: 'ntfs-3g',
  ntfsinfo: 'ntfs-3g',
  mshowfat: 'mtools',
  minfo: 'mtools',
  'dpkg-deb': 'dpkg',
  setfattr: 'attr',
  getfattr: 'attr',
  setfacl: 'acl',
  getfacl: 'acl',
  virsh: 'libvirt-clients',
  syslinux: 'syslinux',
  cpio: 'cpio',
  gzip: 'gzip',
  dd: 'coreutils',
  cmp: 'diffutils',
  'mkfs.fat': 'dosfstools',
  sh: 'dash',
  tar: 'tar',
  mount: 'mount',
  unshare: 'util-linux',
  umount: 'mount',
  mknod: 'coreutils',
  ldd: 'libc-bin',
  libvirtd: 'libvirt-daemon libvirt-daemon-driver-qemu',
  'systemd-analyze': 'systemd',
  'ceph-mon': 'ceph-mon',
  monmaptool: 'ceph-base',
  'ceph-osd': 'ceph-osd',
  radosgw: 'radosgw',
  'radosgw-admin': 'ceph-common',
  'ceph-authtool': 'ceph-common',
  ceph: 'ceph-common',
  ionice: 'util-linux',
  chromium: 'chromium',
  ip: 'iproute2',
};

/** A raw disk image and its partitions, all in bytes. */
export interface PartitionedDisk {
  path: string;
  size: number;
  partitions: { start: number; size: number }[];
}

/** Options of {@link buildExt4Disk}. */
export interface Ext4DiskOptions {
  /** Names the cached file (letters, digits, `.`, `_`, `-`). */
  name: string;
  /** Size of the whole disk in bytes. */
  size: number;
  label: 'gpt' | 'dos';
  /** Default 1. */
  partitionStartMiB?: number;
  partitionSizeMiB: number;
  /** `small`: a generated ~5 MiB tree; `system`: real files of this machine (see systemBytes). */
  files: 'system' | 'small';
  /** Seed of the generated `small` tree. Default 1. */
  seed?: number;
  /** Byte budget of `system` files (default 64 MiB); leave the filesystem ~30% + 16 MiB more. */
  systemBytes?: number;
}

/**
 * The cache folder, created if needed: `$COFFER_TEST_FIXTURES` when set (the test runner,
 * scripts/run-tests.mjs, points it outside the run's private temporary folder so the cache
 * outlives the run), else `${os.tmpdir()}/coffer-fixtures-v1`.
 */
export async function fixtureDir(): Promise<string> {
  const dir = process.env.COFFER_TEST_FIXTURES || path.join(os.tmpdir(), 'coffer-fixtures-v1');
  await fs.mkdir(dir, { recursive: true });
  return dir;
}

/**
 * Deterministic pseudo-random bytes: AES-128-CTR over zeros, keyed by the seed (~1 GB/s).
 * @example seededBytes(7, 4096).equals(seededBytes(7, 4096)) // true
 */
export function seededBytes(seed: number, length: number): Buffer {
  const key = createHash('sha256').update(`coffer-seeded-bytes:${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]);
}

/**
 * Writes `size` seeded bytes to `path`, 16 MiB at a time (each piece seeded from `seed` and its
 * place, so a large file never sits in memory whole): incompressible, every block distinct.
 */
export async function writeSeededFile(path: string, size: number, seed: number): Promise<void> {
  const piece = 16 * 1024 * 1024;
  const handle = await fs.open(path, 'w');
  try {
    for (let at = 0; at < size; at += piece) {
      const part = seededBytes(seed * 1000 + at / piece, Math.min(piece, size - at));
      await handle.write(part, 0, part.length, at);
    }
  } finally {
    await handle.close();
  }
}

/** Throws an Error naming each tool that is not on PATH, /usr/sbin or /sbin, and its package. */
export async function requireTools(...names: string[]): Promise<void> {
  const missing: string[] = [];
  for (const name of names) if ((await findTool(name)) === undefined) missing.push(name);
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((n) => PACKAGES[n] ?? '?'))].join(' ');
  const list = missing.map((n) => `${n} (Debian package ${PACKAGES[n] ?? 'unknown'})`).join(', ');
  throw new Error(`tests need missing tools: ${list}; .ci/run installs them (apt-get install ${packages})`);
}

/**
 * A sparse raw disk with one ext4 partition filled from `options.files`, checked with
 * `e2fsck -fn`. Built once per name and options; concurrent callers get the same file.
 * @example
 * const disk = await buildExt4Disk({ name: 'small-gpt', size: 64 << 20, label: 'gpt', partitionSizeMiB: 32, files: 'small' });
 * // the filesystem: debugfs -R 'ls -l /' "${disk.path}?offset=${disk.partitions[0].start}"
 */
export async function buildExt4Disk(options: Ext4DiskOptions): Promise<PartitionedDisk> {
  const o: Required<Ext4DiskOptions> = {
    ...options,
    partitionStartMiB: options.partitionStartMiB ?? 1,
    seed: options.seed ?? 1,
    systemBytes: options.files === 'small' ? 0 : options.systemBytes ?? 64 * MiB, // 0: not in small's key
  };
  const end = (o.partitionStartMiB + o.partitionSizeMiB + 1) * MiB; // + room for the GPT backup
  if (o.partitionStartMiB < 1 || end > o.size) throw new RangeError(`partition does not fit in ${o.name}`);
  const file = cacheName(o.name, { kind: 'ext4', ...o });
  return readDisk(await buildCached(file, (tmp) => writeExt4Disk(tmp, file, o)));
}

/**
 * A 5 GiB sparse GPT disk whose ext4 partition (`small` files) starts at 4200 MiB, beyond
 * 4 GiB, with 64 KiB of `seededBytes(4242, …)` at offset 1 MiB; all else is holes
 * (checked: it uses less than 200 MiB).
 */
export async function buildSparseDiskBeyond4G(name: string): Promise<PartitionedDisk> {
  const o = {
    name, size: 5 * 1024 * MiB, label: 'gpt', partitionStartMiB: 4200, partitionSizeMiB: 128, files: 'small', seed: 1,
    systemBytes: 0,
  } as const;
  const file = cacheName(name, { kind: 'beyond4g', ...o });
  return readDisk(await buildCached(file, async (tmp) => {
    await writeExt4Disk(tmp, file, o);
    await writeAt(tmp, MiB, seededBytes(4242, 64 * 1024));
    const used = (await fs.stat(tmp)).blocks * 512;
    if (used >= 200 * MiB) throw new Error(`${file} uses ${used} bytes: holes were filled`);
  }));
}

/**
 * A sparse copy of `base` (`cp --sparse=always`) with `edits` written in order; `bytes` is
 * the data, or a length of `seededBytes(seed ?? offset, length)`. Cached by name, base
 * (path, size, mtime, inode) and edits. Returns the new file's path.
 */
export async function deriveDisk(
  base: string,
  name: string,
  edits: { offset: number; bytes: Buffer | number; seed?: number }[],
): Promise<string> {
  const st = await fs.stat(base);
  const hash = createHash('sha256').update(JSON.stringify([path.resolve(base), st.size, st.mtimeMs, st.ino]));
  for (const e of edits) {
    hash.update(JSON.stringify([e.offset, e.seed, typeof e.bytes === 'number' ? e.bytes : e.bytes.length]));
    if (typeof e.bytes !== 'number') hash.update(e.bytes);
  }
  const file = cacheName(name, { kind: 'derived', edits: hash.digest('hex') });
  return buildCached(file, async (tmp) => {
    await run('cp', ['--sparse=always', base, tmp]);
    for (const e of edits) {
      if (!Number.isSafeInteger(e.offset) || e.offset < 0) throw new RangeError(`bad edit offset ${e.offset}`);
      await writeAt(tmp, e.offset, typeof e.bytes === 'number' ? seededBytes(e.seed ?? e.offset, e.bytes) : e.bytes);
    }
  });
}

async function findTool(name: string): Promise<string | undefined> {
  const dirs = [...(process.env['PATH'] ?? '').split(path.delimiter).filter(Boolean), '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    const ok = await fs.access(candidate, fsConstants.X_OK).then(() => true, () => false);
    if (ok) return candidate;
  }
  return undefined;
}

/** Runs a tool (found as {@link requireTools} finds it) and returns its stdout. */
export async function runTool(tool: string, args: string[], input = ''): Promise<string> {
  return run(tool, args, input);
}

/**
 * A fixture file built once per `name` and `recipe` (any JSON; put everything the bytes
 * depend on in it) by `build(tmpPath)`, cached like every disk here; returns its path.
 */
export async function cachedFixture(name: string, recipe: object, build: (tmp: string) => Promise<void>): Promise<string> {
  return buildCached(cacheName(name, { kind: 'custom', ...recipe }).replace(/\.raw$/, '.img'), build);
}

async function run(tool: string, args: string[], input = ''): Promise<string> {
  const file = await findTool(tool);
  if (file === undefined) await requireTools(tool);
  const env = { ...process.env, LC_ALL: 'C', E2FSPROGS_FAKE_TIME: String(FIXED_TIME) };
  const pending = execFileAsync(file ?? tool, args, { encoding: 'utf8', env, maxBuffer: 64 * MiB });
  pending.child.stdin?.on('error', () => {}); // EPIPE when a tool exits without reading stdin
  pending.child.stdin?.end(input);
  try {
    return (await pending).stdout;
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
    throw new Error(`${tool} ${args.join(' ')} failed:\n${stderr}${stdout}`, { cause: err });
  }
}

function cacheName(name: string, recipe: object): string {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new RangeError(`bad fixture name ${JSON.stringify(name)}`);
  const key = createHash('sha256').update(JSON.stringify({ RECIPE, ...recipe })).digest('hex');
  return `${name}-${key.slice(0, 12)}.raw`;
}

/** Returns the cached file, building it first (into a temporary name) if it is missing. */
async function buildCached(fileName: string, build: (tmp: string) => Promise<void>): Promise<string> {
  const dir = await fixtureDir();
  const final = path.join(dir, fileName);
  if (await fs.access(final).then(() => true, () => false)) return final;
  const tmp = path.join(dir, `.${fileName}.${process.pid}.${randomUUID()}.tmp`);
  try {
    await build(tmp);
    await fs.link(tmp, final).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err; // another process won: use its identical disk
    });
  } finally {
    await fs.rm(tmp, { force: true });
  }
  return final;
}

async function writeAt(file: string, offset: number, bytes: Buffer): Promise<void> {
  const handle = await fs.open(file, 'r+');
  try {
    await handle.write(bytes, 0, bytes.length, offset);
  } finally {
    await handle.close();
  }
}

async function writeExt4Disk(tmp: string, key: string, o: Required<Ext4DiskOptions>): Promise<void> {
  const uuid = (purpose: string): string =>
    createHash('sha256').update(`${key}:${purpose}`).digest('hex').slice(0, 32)
      .replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
  const partition = `start=${o.partitionStartMiB * 2048}, size=${o.partitionSizeMiB * 2048}, type=L`;
  const table = o.label === 'gpt'
    ? `label: gpt\nlabel-id: ${uuid('gpt')}\n${partition}, uuid=${uuid('part')}\n`
    : `label: dos\nlabel-id: 0x${uuid('mbr').slice(0, 8)}\n${partition}\n`;
  await fs.writeFile(tmp, '');
  await fs.truncate(tmp, o.size);
  await run('sfdisk', ['-q', tmp], table);
  const src = await fs.mkdtemp(path.join(await fixtureDir(), '.src-'));
  try {
    if (o.files === 'small') await writeSmallTree(src, o.seed);
    else await copySystemFiles(src, o.systemBytes);
    await freezeTimes(src, o.files === 'small');
    const offset = o.partitionStartMiB * MiB;
    await run('mke2fs', ['-q', '-F', '-t', 'ext4', '-U', uuid('fs'),
      '-E', `offset=${offset},nodiscard,hash_seed=${uuid('hash')}`, '-d', src, tmp, `${o.partitionSizeMiB * 1024}k`]);
    await run('e2fsck', ['-fn', `${tmp}?offset=${offset}`]);
  } finally {
    await fs.rm(src, { recursive: true, force: true });
  }
  if ((await fs.stat(tmp)).size !== o.size) throw new Error(`mke2fs changed the size of ${key}`);
}

/** ~40 files (0..300 KiB, text and random), a symlink, a hard link, a sparse file, an empty dir. */
async function writeSmallTree(root: string, seed: number): Promise<void> {
  let state = seed >>> 0; // mulberry32
  const rand = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const words = ['coffer', 'disk', 'block', 'chunk', 'extent', 'snapshot', 'backup', 'restore', 'inode', 'sector'];
  const dirs = ['', 'etc', 'home/alice', 'home/alice/docs', 'var/log', 'usr/bin'];
  for (const d of [...dirs, 'empty-dir']) await fs.mkdir(path.join(root, d), { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < 40; i++) {
    const size = i % 8 === 0 ? 0 : Math.floor(rand() * 300 * 1024);
    const text = i % 2 === 1;
    const rel = path.join(dirs[i % dirs.length] ?? '', `file-${i}.${text ? 'txt' : 'bin'}`);
    let data = seededBytes(seed * 1000 + i, size);
    if (text) {
      let lines = '';
      const word = (): string => words[Math.floor(rand() * words.length)] ?? '';
      while (lines.length < size) lines += `${Array.from({ length: 8 }, word).join(' ')}\n`;
      data = Buffer.from(lines).subarray(0, size);
    }
    await fs.writeFile(path.join(root, rel), data);
    files.push(rel);
  }
  await fs.writeFile(path.join(root, 'home/alice/docs/café ☕ notes.txt'), 'unicode name\n');
  await fs.symlink(`../${files[3]}`, path.join(root, 'home/latest'));
  await fs.link(path.join(root, files[5]!), path.join(root, 'usr/bin/hard-link'));
  const sparse = path.join(root, 'var/sparse.img'); // 4 MiB, data at 0 and at 3 MiB only
  await fs.writeFile(sparse, seededBytes(seed + 7, 4096));
  await writeAt(sparse, 3 * MiB, seededBytes(seed + 8, 4096));
  await fs.truncate(sparse, 4 * MiB);
}

/**
 * Real files of this machine, in sorted order: /usr/share/doc up to a quarter of `budget`,
 * then `*.so*` of /usr/lib/<triplet>. Sockets, devices and unreadable files are skipped.
 */
async function copySystemFiles(root: string, budget: number): Promise<void> {
  let left = Math.floor(budget / 4);
  const copy = async (src: string, dst: string, recurse: boolean): Promise<void> => {
    try {
      const st = await fs.lstat(src);
      if (st.isSymbolicLink()) {
        await fs.symlink(await fs.readlink(src), dst);
      } else if (st.isFile() && st.size <= left) {
        await fs.copyFile(src, dst);
        await fs.utimes(dst, st.atime, st.mtime);
        left -= st.size;
      } else if (st.isDirectory() && recurse) {
        await fs.mkdir(dst);
        for (const n of (await fs.readdir(src)).sort()) await copy(path.join(src, n), path.join(dst, n), true);
      }
    } catch {
      // unreadable or vanished: skip it
    }
  };
  await fs.mkdir(path.join(root, 'usr/share'), { recursive: true });
  await copy('/usr/share/doc', path.join(root, 'usr/share/doc'), true);
  left += budget - Math.floor(budget / 4);
  const triplets = (await fs.readdir('/usr/lib')).filter((n) => n.endsWith('-linux-gnu')).sort();
  for (const t of triplets) {
    await fs.mkdir(path.join(root, 'usr/lib', t), { recursive: true });
    const libs = (await fs.readdir(path.join('/usr/lib', t))).filter((n) => /\.so(\.|$)/.test(n)).sort();
    for (const n of libs) await copy(path.join('/usr/lib', t, n), path.join(root, 'usr/lib', t, n), false);
  }
}

/** Sets folders and symlinks (and regular files too if `files`) to fixed, distinct times. */
async function freezeTimes(dir: string, files: boolean, counter = { n: 0 }): Promise<void> {
  for (const name of (await fs.readdir(dir)).sort()) {
    const p = path.join(dir, name);
    const st = await fs.lstat(p);
    if (st.isDirectory()) await freezeTimes(p, files, counter);
    if (st.isDirectory() || st.isSymbolicLink() || files) {
      const t = FIXED_TIME - 61 * ++counter.n;
      await fs.lutimes(p, t, t);
    }
  }
  await fs.utimes(dir, FIXED_TIME, FIXED_TIME);
}

async function readDisk(file: string): Promise<PartitionedDisk> {
  const parsed: unknown = JSON.parse(await run('sfdisk', ['-J', file]));
  const table = (parsed as { partitiontable?: { sectorsize?: unknown; partitions?: unknown } }).partitiontable;
  const sector = typeof table?.sectorsize === 'number' ? table.sectorsize : 512;
  const parts = Array.isArray(table?.partitions) ? (table.partitions as unknown[]) : [];
  const partitions = parts.map((p) => {
    const { start, size } = p as { start?: unknown; size?: unknown };
    if (typeof start !== 'number' || typeof size !== 'number') throw new Error(`bad sfdisk -J output for ${file}`);
    return { start: start * sector, size: size * sector };
  });
  return { path: file, size: (await fs.stat(file)).size, partitions };
}
