/**
 * The demo's disk images, made by the real tools (no mounting, no root): a GPT disk with an
 * ext4 partition (sfdisk, mke2fs -d), the same as qcow2 (qemu-img convert), a FAT16 volume
 * (mkfs.fat, mcopy) and an NTFS volume (mkntfs, ntfscp). Each holds a few small files, so
 * file browsing and restores have something real to show. Small on purpose (16–32 MiB,
 * mostly empty): the demo builds in seconds.
 */
import { execFile } from 'node:child_process';
import { access, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CofferError } from '../../errors/index.js';
import { makeFolders } from '../../native/index.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

/** The Debian package of each tool, for the message when one is missing. */
export const DEMO_TOOLS: Readonly<Record<string, string>> = {
  sfdisk: 'fdisk',
  mke2fs: 'e2fsprogs',
  'qemu-img': 'qemu-utils',
  'mkfs.fat': 'dosfstools',
  mcopy: 'mtools',
  mkntfs: 'ntfs-3g',
  ntfscp: 'ntfs-3g',
};

const PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin:/usr/bin:/bin`;

/** Runs a tool; a missing one is an E_USAGE naming its package. */
async function tool(name: string, args: string[]): Promise<void> {
  try {
    await run(name, args, { env: { ...process.env, PATH, TZ: 'UTC', LC_ALL: 'C.UTF-8', MTOOLS_SKIP_CHECK: '1' }, maxBuffer: 4 * MiB });
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new CofferError('E_USAGE', `the demo needs ${name}: apt-get install ${DEMO_TOOLS[name] ?? name}`, { cause: error });
    throw new CofferError('E_USAGE', `building the demo's disks: ${name} failed: ${(e.stderr ?? e.message).trim().split('\n').at(-1) ?? ''}`, { cause: error });
  }
}

/** Checks every tool is there before anything is built. @throws CofferError E_USAGE listing the packages to install. */
export async function checkDemoTools(): Promise<void> {
  const missing: string[] = [];
  for (const name of Object.keys(DEMO_TOOLS)) {
    const found = await Promise.any(PATH.split(':').filter(Boolean).map((dir) => access(join(dir, name)))).then(() => true, () => false);
    if (!found) missing.push(DEMO_TOOLS[name] as string);
  }
  if (missing.length > 0) throw new CofferError('E_USAGE', `the demo builds real disk images and needs: apt-get install ${[...new Set(missing)].join(' ')}`);
}

/** The files of a demo VM: name → content. */
export function demoFiles(vm: string): Record<string, string> {
  const lines = Array.from({ length: 200 }, (_, i) => `2026-11-${String((i % 28) + 1).padStart(2, '0')} 03:${String(i % 60).padStart(2, '0')} ${vm}: request ${i * 7919 % 1000} served in ${(i * 31) % 97} ms`);
  return {
    'README.txt': `This is ${vm}, a demo VM of Coffer.\nIts disks were made by npm start from real filesystem images.\n`,
    'hostname': `${vm}\n`,
    'access.log': `${lines.join('\n')}\n`,
    'notes.md': `# ${vm}\n\n- backed up nightly by the job "nightly"\n- restore a single file from the console's file browser\n`,
  };
}

async function writeTree(dir: string, files: Record<string, string>): Promise<void> {
  await makeFolders(dir);
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
}

/** A GPT disk of `sizeMiB` with one ext4 partition holding `files`. */
export async function buildExt4Disk(file: string, sizeMiB: number, files: Record<string, string>, work: string): Promise<void> {
  const tree = join(work, 'tree');
  await rm(tree, { recursive: true, force: true });
  await writeTree(tree, files);
  await writeFile(file, '');
  await tool('truncate', ['-s', `${sizeMiB}M`, file]);
  const partitionMiB = sizeMiB - 2;
  await run('sh', ['-c', `printf 'label: gpt\\nstart=2048, size=${partitionMiB * 2048}, name=root\\n' | sfdisk -q "$1"`, 'sh', file], { env: { ...process.env, PATH } }).catch((error: unknown) => {
    throw new CofferError('E_USAGE', `building the demo's disks: sfdisk failed (apt-get install fdisk): ${(error as Error).message.split('\n')[0] ?? ''}`, { cause: error });
  });
  await tool('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'root', '-E', `offset=${MiB},nodiscard`, '-d', tree, file, `${partitionMiB}M`]);
  await rm(tree, { recursive: true, force: true });
}

/** The same as a qcow2 image. */
export async function buildQcow2Disk(file: string, sizeMiB: number, files: Record<string, string>, work: string): Promise<void> {
  const raw = join(work, 'qcow2-source.raw');
  await buildExt4Disk(raw, sizeMiB, files, work);
  await tool('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, file]);
  await rm(raw, { force: true });
}

/** A whole-disk FAT16 volume holding `files`. */
export async function buildFatDisk(file: string, sizeMiB: number, files: Record<string, string>, work: string): Promise<void> {
  const tree = join(work, 'tree');
  await rm(tree, { recursive: true, force: true });
  await writeTree(tree, files);
  await rm(file, { force: true });
  await tool('mkfs.fat', ['-C', '-F', '16', '-n', 'DEMO', file, String(sizeMiB * 1024)]);
  await tool('mcopy', ['-i', file, '-s', ...Object.keys(files).map((name) => join(tree, name)), '::/']);
  await rm(tree, { recursive: true, force: true });
}

/** A whole-disk NTFS volume holding `files` at its root. */
export async function buildNtfsDisk(file: string, sizeMiB: number, files: Record<string, string>, work: string): Promise<void> {
  const tree = join(work, 'tree');
  await rm(tree, { recursive: true, force: true });
  await writeTree(tree, files);
  await writeFile(file, '');
  await tool('truncate', ['-s', `${sizeMiB}M`, file]);
  await tool('mkntfs', ['-F', '-Q', '-q', '-L', 'DEMO', file]);
  for (const name of Object.keys(files)) await tool('ntfscp', ['-f', '-q', file, join(tree, name), name]);
  await rm(tree, { recursive: true, force: true });
}
