/**
 * Live backup of a running libvirt domain through a real, private libvirtd 9.0 (session mode,
 * TCG, no guest OS; guest writes by HMP qemu-io through `virsh qemu-monitor-command`): every
 * disk at one instant, writes after the instant excluded, a read-only disk left out,
 * incrementals that read only the dirty ranges, failed and killed backups that lose no change,
 * a deleted checkpoint that falls back to a full read with its reason, and old checkpoints
 * pruned. The oracle is a model of each disk in memory, updated with every write the test makes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { backupVm } from '../../backup/index.js';
import { LocalBackend, initRepository, openRepository, type Repository, type Snapshot } from '../../repo/index.js';
import { SnapshotDisk } from '../../restore/index.js';
import { runTool, startTestLibvirt, type TestDomain, type TestLibvirt } from '../../testing/index.js';
import { isCofferError } from '../../errors/index.js';
import { openLibvirtSource } from '../index.js';
import { LIBVIRT_DEFINITION_FORMAT } from './libvirt-source.js';
import { childElement, parseXml, textOf } from '../../xml/index.js';

const MiB = 1024 * 1024;
const KiB = 1024;
const SIZES = { vda: 48 * MiB, vdb: 16 * MiB, vde: 4 * MiB } as const;
type DiskName = keyof typeof SIZES;
const DOMAIN = 'coffer-test-web01';

let libvirt: TestLibvirt;
let domain: TestDomain;
let repo: Repository;
let work: string;
const model: Record<DiskName, Buffer> = { vda: Buffer.alloc(SIZES.vda), vdb: Buffer.alloc(SIZES.vdb), vde: Buffer.alloc(SIZES.vde) };
/**
 * vde is raw: libvirt keeps no checkpoint for it, so every backup reads its blocks holding
 * data, as `qemu-img map` of the file counts them (the host filesystem may allocate more
 * than the 64 KiB written).
 */
let RAW_DISK_READ = 0;

before(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-libvirt-source-test-'));
  libvirt = await startTestLibvirt();
  domain = await libvirt.startDomain({
    name: DOMAIN,
    disks: [
      { target: 'vda', size: SIZES.vda },
      { target: 'vdb', size: SIZES.vdb },
      { target: 'vdc', size: 4 * MiB, format: 'raw', readOnly: true },
      { target: 'vde', size: SIZES.vde, format: 'raw' },
    ],
  });
  const backend = new LocalBackend(path.join(work, 'repo'));
  await initRepository(backend, { passphrase: 'libvirt', kdf: { N: 1024, r: 8, p: 1 } });
  repo = await openRepository(backend, { passphrase: 'libvirt', threads: 2 });
});
after(async () => {
  await repo?.close();
  await libvirt?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

async function write(disk: DiskName, offset: number, length: number, pattern: number): Promise<void> {
  await domain.write(disk, offset, length, pattern);
  model[disk].fill(pattern, offset, offset + length);
}

function instant(): Record<DiskName, Buffer> {
  return { vda: Buffer.from(model.vda), vdb: Buffer.from(model.vdb), vde: Buffer.from(model.vde) };
}

function open(previous?: Snapshot): ReturnType<typeof openLibvirtSource> {
  return openLibvirtSource({ vm: 'web01', domain: DOMAIN, connect: libvirt.uri, ...(previous ? { previous: checkpoints(previous) } : {}) });
}

async function backup(parent: Snapshot | null, afterInstant?: () => Promise<void>): Promise<Snapshot> {
  const source = await open(parent ?? undefined);
  try {
    await afterInstant?.();
    return await backupVm(repo, source, { parent });
  } finally {
    await source.close();
  }
}

async function assertSnapshotEquals(snapshot: Snapshot, expected: Record<DiskName, Buffer>): Promise<void> {
  assert.deepEqual(snapshot.disks.map((d) => d.name), ['vda', 'vdb', 'vde'], 'the writable disks, by target; the read-only vdc left out');
  for (const name of Object.keys(SIZES) as DiskName[]) {
    const record = snapshot.disks.find((d) => d.name === name);
    assert.ok(record);
    const disk = new SnapshotDisk(repo, snapshot.id, record);
    assert.equal(disk.size, SIZES[name]);
    const bytes = Buffer.from(await disk.read(0, disk.size));
    assert.ok(bytes.equals(expected[name]), `${name}: the snapshot holds the disk at its instant`);
  }
}

function checkpoints(snapshot: Snapshot): Map<string, string> {
  return new Map(snapshot.disks.flatMap((d) => (d.changeTracking?.checkpoint ? [[d.name, d.changeTracking.checkpoint] as const] : [])));
}

async function domainCheckpoints(): Promise<string[]> {
  return (await libvirt.virsh('checkpoint-list', '--name', DOMAIN)).split('\n').map((l) => l.trim()).filter((l) => l !== '');
}

/** The bytes of the 256 KiB blocks of a raw image that hold data, per qemu-img map. */
async function dataBlockBytes(image: string): Promise<number> {
  const map = JSON.parse(await runTool('qemu-img', ['map', '-U', '-f', 'raw', '--output=json', image])) as { start: number; length: number; data: boolean }[];
  const blocks = new Set<number>();
  const block = 256 * KiB;
  for (const e of map) if (e.data) for (let b = Math.floor(e.start / block); b * block < e.start + e.length; b++) blocks.add(b);
  return blocks.size * block;
}

let first: Snapshot;
let second: Snapshot;

test('a full backup holds every disk at one instant, not the writes made after it, and the domain XML', async () => {
  await write('vda', 1 * MiB, 64 * KiB, 0xa1);
  await write('vda', 40 * MiB, 256 * KiB, 0xa2);
  await write('vdb', 0, 64 * KiB, 0xa3);
  await write('vde', 1 * MiB, 64 * KiB, 0xa4);
  const expected = instant();
  RAW_DISK_READ = await dataBlockBytes(domain.disks.find((d) => d.target === 'vde')?.path as string);
  const source = await open();
  try {
    assert.deepEqual(source.skipped, [{ name: 'vdc', reason: 'read-only' }]);
    await write('vda', 1 * MiB, 64 * KiB, 0xb1); // after the instant: must not be seen
    await write('vdb', 0, 4 * KiB, 0xb2);
    first = await backupVm(repo, source, { parent: null });
  } finally {
    await source.close();
  }
  assert.deepEqual(first.disks.map((d) => d.changeTracking?.method), ['none', 'none', 'none']);
  assert.match(first.disks[0]?.changeTracking?.reason ?? '', /no checkpoint from a previous backup/);
  assert.match(first.disks[2]?.changeTracking?.reason ?? '', /a raw image: libvirt keeps checkpoint bitmaps only in qcow2/);
  assert.equal(first.disks[2]?.changeTracking?.checkpoint, undefined, 'no checkpoint recorded for the raw disk');
  assert.equal(first.stats.bytesRead, 3 * 256 * KiB + RAW_DISK_READ, 'only the blocks holding data were read');
  await assertSnapshotEquals(first, expected);

  assert.equal(first.definition?.format, LIBVIRT_DEFINITION_FORMAT);
  const stored = Buffer.from(first.definition?.data ?? '', 'base64').toString('utf8');
  assert.equal(stored, await libvirt.virsh('dumpxml', '--inactive', DOMAIN), 'the stored definition is the domain\'s inactive XML');
  const name = childElement(parseXml(stored, { what: 'the stored definition', code: 'E_IMAGE_INVALID' }).root, 'name');
  assert.equal(name === undefined ? undefined : textOf(name), DOMAIN);

  // The test domain has no guest agent channel: libvirt cannot freeze it, and the snapshot says so.
  assert.deepEqual(first.consistency, { level: 'crash', reason: 'freeze through libvirt failed: the domain has no guest agent channel' });

  const recorded = [...new Set(checkpoints(first).values())];
  assert.equal(recorded.length, 1, 'one checkpoint for the whole domain');
  assert.deepEqual(await domainCheckpoints(), recorded);
});

test('an incremental reads only the ranges dirty since the last checkpoint, and prunes the older checkpoint', async () => {
  for (let i = 0; i < 6; i++) await write('vda', (3 + 5 * i) * MiB, 4 * KiB, 0xc0 + i);
  const expected = instant();
  second = await backup(first, () => write('vda', 44 * MiB, 64 * KiB, 0xd1));
  assert.deepEqual(second.disks.map((d) => d.changeTracking?.method), ['dirty-bitmap', 'dirty-bitmap', 'none']);
  // Dirty since the first instant: vda 1 MiB (0xb1), vdb's 0xb2, and the six writes: one 64 KiB
  // granule each, read alone (the rest of each block comes from the parent's chunk).
  assert.equal(second.stats.bytesRead, 8 * 64 * KiB + RAW_DISK_READ, `read ${second.stats.bytesRead} bytes`);
  await assertSnapshotEquals(second, expected);
  assert.deepEqual(await domainCheckpoints(), [...new Set(checkpoints(second).values())], 'only the newest checkpoint remains');
});

test('a backup that fails after the instant, and one killed mid-way, lose no change', async () => {
  await write('vdb', 8 * MiB, 64 * KiB, 0xe1);
  // Failed: the capture happened, the snapshot was never recorded.
  const failed = await open(second);
  await write('vdb', 10 * MiB, 64 * KiB, 0xe3);
  await failed.close();
  assert.deepEqual(await domainCheckpoints(), [...new Set(checkpoints(second).values())], 'the failed backup\'s checkpoint was deleted');

  // Killed: the process dies with libvirt's job running and its checkpoint in place.
  const script = `
    const { openLibvirtSource } = await import(${JSON.stringify(new URL('../index.js', import.meta.url).href)});
    await openLibvirtSource({ vm: 'web01', domain: ${JSON.stringify(DOMAIN)}, connect: ${JSON.stringify(libvirt.uri)}, previous: new Map(${JSON.stringify([...checkpoints(second)])}) });
    process.stdout.write('captured\\n');
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('captured') && resolve());
    child.once('exit', (code) => reject(new Error(`the capturing process exited with ${code}`)));
  });
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  assert.ok((await libvirt.virsh('backup-dumpxml', DOMAIN)).includes('coffer-backup.sock'), 'the killed run left its job running');
  assert.equal((await domainCheckpoints()).length, 2, 'and its checkpoint');
  await write('vdb', 9 * MiB, 64 * KiB, 0xe2);
  const expected = instant();
  const third = await backup(second);
  assert.deepEqual(third.disks.map((d) => d.changeTracking?.method), ['dirty-bitmap', 'dirty-bitmap', 'none']);
  // Since the last recorded instant: vda's 0xd1 (written after it) and vdb's three writes,
  // including those the failed and the killed runs had captured: none lost.
  assert.equal(third.stats.bytesRead, 4 * 64 * KiB + RAW_DISK_READ, `read ${third.stats.bytesRead} bytes`);
  await assertSnapshotEquals(third, expected);
  assert.deepEqual(await domainCheckpoints(), [...new Set(checkpoints(third).values())]);
  second = third;
});

test('a checkpoint deleted by hand means a full read, with the reason recorded', async () => {
  const [recorded] = checkpoints(second).values();
  await libvirt.virsh('checkpoint-delete', DOMAIN, recorded as string);
  await write('vda', 12 * MiB, 64 * KiB, 0xf1);
  const expected = instant();
  const fourth = await backup(second);
  assert.deepEqual(fourth.disks.map((d) => d.changeTracking?.method), ['none', 'none', 'none']);
  assert.match(fourth.disks[0]?.changeTracking?.reason ?? '', new RegExp(`checkpoint ${recorded} is missing from domain`));
  await assertSnapshotEquals(fourth, expected);
  assert.deepEqual(await domainCheckpoints(), [...new Set(checkpoints(fourth).values())]);
  second = fourth;
});

test('a checkpoint whose bitmap QEMU lost: libvirt refuses the incremental, the disks are read in full, with the reason', async () => {
  const [recorded] = checkpoints(second).values();
  const blocks = JSON.parse(await libvirt.virsh('qemu-monitor-command', DOMAIN, '{"execute":"query-block"}')) as { return: { qdev?: string; inserted?: { 'node-name'?: string } }[] };
  const node = blocks.return.find((b) => b.qdev === domain.disks[0]?.qdev)?.inserted?.['node-name'];
  assert.ok(node !== undefined, 'the format node of vda');
  await libvirt.virsh('qemu-monitor-command', DOMAIN, JSON.stringify({ execute: 'block-dirty-bitmap-remove', arguments: { node, name: recorded } }));
  await write('vdb', 2 * MiB, 64 * KiB, 0xf2);
  const expected = instant();
  const fifth = await backup(second);
  assert.deepEqual(fifth.disks.map((d) => d.changeTracking?.method), ['none', 'none', 'none']);
  assert.match(fifth.disks[0]?.changeTracking?.reason ?? '', new RegExp(`libvirt refused an incremental backup from checkpoint ${recorded}`));
  await assertSnapshotEquals(fifth, expected);
  assert.deepEqual(await domainCheckpoints(), [...new Set(checkpoints(fifth).values())]);
  second = fifth;
});

test("another tool's backup job is never aborted: the backup stops with one clear error", async () => {
  const socket = path.join(libvirt.dir, 'images', 'other-tool.sock');
  const request = path.join(work, 'other-backup.xml');
  await fs.writeFile(request, `<domainbackup mode='pull'><server transport='unix' socket='${socket}'/><disks><disk name='vda' type='file'><scratch file='${path.join(libvirt.dir, 'images', 'other-scratch.qcow2')}'/></disk><disk name='vdb' backup='no'/><disk name='vde' backup='no'/></disks></domainbackup>`);
  await libvirt.virsh('backup-begin', DOMAIN, request);
  try {
    await assert.rejects(open(second), (e: unknown) => isCofferError(e, 'E_LIBVIRT_ERROR') && /backup job of another tool/.test((e as Error).message));
    assert.ok((await libvirt.virsh('backup-dumpxml', DOMAIN)).includes('other-tool.sock'), 'its job still runs');
    assert.deepEqual(await domainCheckpoints(), [...new Set(checkpoints(second).values())]);
  } finally {
    await libvirt.virsh('domjobabort', DOMAIN);
  }
});

test('a scratch filesystem that fills aborts the job: the backup fails, every guest write lands; a job ended early is never recorded', async () => {
  // Under the daemon's folder: QEMU runs as its user, which cannot pass through the test's work folder.
  const scratch = path.join(libvirt.dir, 'scratch-small');
  await fs.mkdir(scratch);
  await runTool('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=1777', 'tmpfs', scratch]);
  try {
    // Old data where the writes go, so that QEMU copies each overwritten MiB to the scratch image.
    await write('vda', 0, 16 * MiB, 0x31);
    const source = await openLibvirtSource({ vm: 'web01', domain: DOMAIN, connect: libvirt.uri, scratchDir: scratch, scratchMinFreeBytes: 6 * MiB, scratchPollMs: 20 });
    try {
      for (let i = 0; i < 16; i++) {
        await write('vda', i * MiB, MiB, 0x60 + i);
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
      await assert.rejects(source.disks[0]?.device.read(0, 65536) ?? Promise.resolve(), (e: unknown) => isCofferError(e, 'E_NO_SPACE') && (e as Error).message.includes(scratch));
      await assert.rejects(source.confirm?.() ?? Promise.resolve(), (e: unknown) => isCofferError(e, 'E_NO_SPACE'));
    } finally {
      await source.close();
    }
    const disk = domain.disks[0] as { qdev: string; path: string };
    await libvirt.virsh('qemu-monitor-command', DOMAIN, '--hmp', `qemu-io -d ${disk.qdev} "flush"`);
    const now = path.join(work, 'vda-now.raw');
    await runTool('qemu-img', ['convert', '-U', '-O', 'raw', disk.path, now]);
    assert.ok((await fs.readFile(now)).equals(model.vda), 'vda holds every write the guest made');
    await fs.rm(now);
  } finally {
    await runTool('umount', [scratch]);
  }
  // A job aborted by hand while the backup reads: confirm() refuses, nothing is recorded.
  const source = await open(second);
  try {
    await libvirt.virsh('domjobabort', DOMAIN);
    // The abort is asynchronous (libvirt ends the job once QEMU has cancelled its block jobs,
    // as endBackupJob waits for): confirm() is asked once libvirt says there is no job.
    for (const deadline = Date.now() + 20_000; await libvirt.virsh('backup-dumpxml', DOMAIN).then(() => true, () => false); ) {
      assert.ok(Date.now() < deadline, 'the aborted backup job ended within 20 s');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await assert.rejects(source.confirm?.() ?? Promise.resolve(), (e: unknown) => isCofferError(e, 'E_SOURCE_UNREADABLE') && /backup job ended/.test((e as Error).message));
  } finally {
    await source.close();
  }
  assert.deepEqual(await domainCheckpoints(), [...new Set(checkpoints(second).values())], 'the failed backups left no checkpoint');
});
