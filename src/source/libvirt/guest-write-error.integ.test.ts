/**
 * A libvirt domain's guest write that fails while Coffer's backup job holds its disks: the job
 * ends at once and the domain libvirt's QEMU paused on it is resumed, so the write is retried
 * on the disk alone and the guest never sees it fail (libvirt-source.ts); and a job that
 * someone else ends is seen when libvirt says so, not only before the snapshot is recorded.
 *
 * A private session libvirtd (src/testing/libvirt.ts) boots the real Linux guest with the real
 * qemu-ga of src/testing/agent-guest.ts (its ext4 disk is vda); the guest writes with busybox
 * dd to a second disk, vdb, started through `virsh qemu-agent-command` guest-exec. The scratch
 * folder is a 4 MiB tmpfs and the scratch watch never looks: the copy-before-write of 6 MiB of
 * old data fills it, the guest's write fails with ENOSPC and QEMU's default pauses the domain
 * (`paused (I/O error)`). Without the resume the guest's dd never ends.
 * A backup with the guest's filesystems frozen through libvirt is application-consistent and
 * leaves them thawed. A domain paused between the freeze and the thaw (the same failed write, while the job starts)
 * is thawed once it is resumed: the pause is `virsh suspend` there, at that instant exactly.
 * A resume that libvirt refuses (a wrapper around the real virsh on PATH refuses `resume`) leaves
 * the domain paused and the error says so. A write that fails while the job starts (inside
 * LibvirtBackup.start, from the capture hook) fails the start and the domain is resumed.
 * Oracles: the guest's dd exit status and sha256sum, the disk image's bytes read on the host,
 * `virsh domstate`, the guest agent's own `guest-fsfreeze-status`.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { backupVm } from '../../backup/index.js';
import { isCofferError } from '../../errors/index.js';
import { LocalBackend, initRepository, listSnapshots, openRepository, type Repository } from '../../repo/index.js';
import { SnapshotDisk } from '../../restore/index.js';
import { agentGuestFilesystem, agentGuestInitramfs, guestKernel, guestOverwriteScript, imageStartSha256, mountSmallFilesystem, readGuestOverwrite, startTestLibvirt, type TestDomain, type TestLibvirt } from '../../testing/index.js';
import { openLibvirtSource, type LibvirtSourceOptions } from '../index.js';
import { LibvirtFreeze } from './libvirt-freeze.js';
import { Virsh } from './virsh.js';

const MiB = 1024 * 1024;
const DOMAIN = 'writer';
const WRITE = 6 * MiB;
const NEVER_MS = 600_000;

let libvirt: TestLibvirt;
let domain: TestDomain;
let work: string;
let repo: Repository;
let scratch: string;
let unmount: (() => Promise<void>) | undefined;

before(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-libvirt-write-'));
  const data = path.join(work, 'data.raw');
  await fs.writeFile(data, randomBytes(16 * MiB)); // old data everywhere the guest overwrites
  const kernel = await guestKernel();
  libvirt = await startTestLibvirt();
  domain = await libvirt.startDomain({
    name: DOMAIN,
    disks: [
      { target: 'vda', size: 16 * MiB, format: 'raw', from: await agentGuestFilesystem() },
      { target: 'vdb', size: 16 * MiB, format: 'raw', from: data },
    ],
    guest: { vmlinuz: kernel.vmlinuz, initrd: await agentGuestInitramfs(), cmdline: 'console=ttyS0 quiet panic=-1 coffer.agent=1' },
  });
  const deadline = Date.now() + 90_000;
  while (!(await domain.console()).includes('COFFER-AGENT-READY')) {
    if (Date.now() > deadline || (await domain.console()).includes('COFFER-AGENT-FAIL')) throw new Error(`the guest did not boot:\n${(await domain.console()).slice(-4000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // Under the daemon's folder: QEMU runs as its user, which cannot pass through the test's work folder.
  scratch = path.join(libvirt.dir, 'scratch-small');
  unmount = await mountSmallFilesystem(scratch, 4 * MiB, { mode: '1777' });
  const backend = new LocalBackend(path.join(work, 'repo'));
  await initRepository(backend, { passphrase: 'write', kdf: { N: 1024, r: 8, p: 1 } });
  repo = await openRepository(backend, { passphrase: 'write', threads: 2 });
});
after(async () => {
  await unmount?.();
  await libvirt?.stop();
  await repo?.close();
  await fs.rm(work, { recursive: true, force: true });
});

async function agent(command: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
  const out = await libvirt.virsh('qemu-agent-command', DOMAIN, '--timeout', '60', JSON.stringify({ execute: command, arguments: args }));
  return (JSON.parse(out) as { return: Record<string, unknown> }).return;
}

/** The guest writes WRITE fresh random bytes at the start of /dev/vdb; its dd's exit status and their SHA-256. */
async function guestOverwritesVdb(): Promise<{ exitcode: number; sha256: string; out: string }> {
  const script = guestOverwriteScript('/dev/vdb', WRITE / MiB);
  const { pid } = (await agent('guest-exec', { path: '/bin/busybox', arg: ['sh', '-c', script], 'capture-output': true })) as { pid: number };
  const deadline = Date.now() + 90_000;
  for (;;) {
    // libvirt refuses agent commands while the domain is paused: asked again until the deadline.
    const status = await agent('guest-exec-status', { pid }).catch((error: unknown) => {
      if (/domain is not running/.test(String((error as Error).message))) return {} as Record<string, unknown>;
      throw error;
    });
    if (status['exited'] === true) {
      return readGuestOverwrite(Buffer.from(String(status['out-data'] ?? ''), 'base64').toString('utf8'));
    }
    if (Date.now() > deadline) throw new Error(`the guest's dd did not end (domain ${(await libvirt.virsh('domstate', '--reason', DOMAIN)).trim()})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function hostSha256(): Promise<string> {
  const vdb = domain.disks.find((d) => d.target === 'vdb');
  assert.ok(vdb);
  return imageStartSha256(vdb.path, WRITE / MiB);
}

/** SIGKILLs the `virsh event` listener of this domain on this test's daemon; how many there were. */
async function killEventListener(): Promise<number> {
  let killed = 0;
  for (const pid of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const argv = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (path.basename(argv[0] ?? '') !== 'virsh' || !argv.includes(libvirt.uri) || !argv.includes('event') || !argv.includes(DOMAIN)) continue;
    process.kill(Number(pid), 'SIGKILL');
    killed += 1;
  }
  return killed;
}

/** Polls `virsh domstate --reason` until it matches `state` (90 s at most). */
async function waitForDomState(state: RegExp): Promise<void> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const now = (await libvirt.virsh('domstate', '--reason', DOMAIN)).trim();
    if (state.test(now)) return;
    if (Date.now() > deadline) throw new Error(`domain ${DOMAIN} is ${now}, not ${state}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Until the returned function is called, `virsh` on this process's PATH is a wrapper around
 * the real one that fails `virsh … SUBCOMMAND …` with an error of its own (everything else
 * passes through): libvirt's own refusal, made to happen on demand.
 */
async function refuseVirshCommand(subcommand: string): Promise<() => Promise<void>> {
  const real = await realVirsh();
  const dir = await fs.mkdtemp(path.join(work, 'virsh-'));
  const script = `#!/bin/sh\nfor a in "$@"; do [ "$a" = ${subcommand} ] && { echo "error: refused by the test's wrapper" >&2; exit 1; }; done\nexec ${real} "$@"\n`;
  await fs.writeFile(path.join(dir, 'virsh'), script, { mode: 0o755 });
  const before = process.env['PATH'];
  process.env['PATH'] = `${dir}:${before ?? ''}`;
  return async () => {
    process.env['PATH'] = before;
    await fs.rm(dir, { recursive: true, force: true });
  };
}

async function realVirsh(): Promise<string> {
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    const candidate = path.join(dir || '.', 'virsh');
    if (await fs.access(candidate, fs.constants.X_OK).then(() => true, () => false)) return candidate;
  }
  throw new Error('no virsh on PATH');
}

function options(extra: Partial<LibvirtSourceOptions> = {}): LibvirtSourceOptions {
  return { vm: 'writer', domain: DOMAIN, connect: libvirt.uri, scratchDir: scratch, scratchMinFreeBytes: MiB, scratchPollMs: NEVER_MS, freeze: false, ...extra };
}

/** The guest overwrites vdb while `source` captures: its write lands (the domain was resumed), and the backup fails with E_NO_SPACE saying `says`. */
async function assertWriteLandedAndBackupFails(source: Awaited<ReturnType<typeof openLibvirtSource>>, says: RegExp): Promise<void> {
  const wrote = await guestOverwritesVdb();
  assert.equal(wrote.exitcode, 0, `the guest's dd saw no error:\n${wrote.out}`);
  assert.match(await libvirt.virsh('domstate', DOMAIN), /^running/);
  assert.equal(await hostSha256(), wrote.sha256, 'the disk holds what the guest wrote');
  await assert.rejects(backupVm(repo, source), (e: unknown) => {
    assert.ok(isCofferError(e, 'E_NO_SPACE'), String(e));
    assert.match((e as Error).message, says);
    return true;
  });
}

test('a guest write failed by a full scratch image: the job ends, the domain is resumed, the write lands, the backup fails', async () => {
  const source = await openLibvirtSource(options());
  try {
    await assertWriteLandedAndBackupFails(source, /an I\/O error of domain writer on (its disk vdb|one of its disks \(libvirt did not say which\)) while the backup held its point-in-time view \(libvirt: enospc; most likely a guest write the job's copy of old data failed\): QEMU paused the domain on it/);
  } finally {
    await source.close();
  }
  assert.deepEqual(await listSnapshots(repo, { vm: 'writer' }), []);
  await assert.rejects(libvirt.virsh('backup-dumpxml', DOMAIN), /no domain backup job|no job/i);
});

test('with its event listener lost (virsh killed), a pause is seen from the domain\'s state: the job ends, the domain is resumed, the backup fails', async () => {
  const source = await openLibvirtSource(options());
  try {
    const killed = await killEventListener();
    assert.equal(killed, 1, 'one virsh event listener of this domain');
    await assertWriteLandedAndBackupFails(source, /QEMU paused the domain on it.*\(seen from the domain's state: its event listener had ended/s);
  } finally {
    await source.close();
  }
  assert.deepEqual(await listSnapshots(repo, { vm: 'writer' }), []);
});

test('a resume that fails: the domain stays paused, and the error says so and how to resume it; resumed by hand, the write lands', async () => {
  const allowResume = await refuseVirshCommand('resume');
  let closeError: unknown;
  let wrote: ReturnType<typeof guestOverwritesVdb> | undefined;
  try {
    const source = await openLibvirtSource(options());
    try {
      wrote = guestOverwritesVdb();
      wrote.catch(() => {}); // awaited below, once the domain runs again
      await waitForDomState(/^paused \(I\/O error\)/);
      await assert.rejects(backupVm(repo, source), (e: unknown) => isCofferError(e, 'E_NO_SPACE'));
    } finally {
      closeError = await source.close().then(() => undefined, (e: unknown) => e);
    }
    assert.match(await libvirt.virsh('domstate', '--reason', DOMAIN), /^paused \(I\/O error\)/, 'the refused resume left the domain paused');
  } finally {
    await allowResume();
  }
  assert.ok(isCofferError(closeError, 'E_SOURCE_UNREADABLE'), String(closeError));
  assert.match((closeError as Error).message, /could not be resumed \(.*refused by the test's wrapper.*\); THE DOMAIN IS STILL PAUSED: resume it with "virsh resume writer"/s);
  await libvirt.virsh('resume', DOMAIN);
  assert.ok(wrote);
  const landed = await wrote;
  assert.equal(landed.exitcode, 0, `the guest's dd saw no error once resumed:\n${landed.out}`);
  assert.equal(await hostSha256(), landed.sha256);
  assert.deepEqual(await listSnapshots(repo, { vm: 'writer' }), []);
  await assert.rejects(libvirt.virsh('backup-dumpxml', DOMAIN), /no domain backup job|no job/i);
});

test('a guest write that fails while the job starts: the start fails with it, the job ends, the domain is resumed, the write lands', async () => {
  let wrote: ReturnType<typeof guestOverwritesVdb> | undefined;
  const started = openLibvirtSource(
    options({
      hooks: {
        // After backup-begin, inside LibvirtBackup.start: the guest's write fails there.
        afterCapture: async () => {
          wrote = guestOverwritesVdb();
          wrote.catch(() => {}); // awaited below
          await waitForDomState(/^paused \(I\/O error\)/);
          await new Promise((resolve) => setTimeout(resolve, 2000)); // libvirt's event reaches the listener
        },
      },
    }),
  );
  await assert.rejects(started, (e: unknown) => {
    assert.ok(isCofferError(e, 'E_NO_SPACE'), String(e));
    assert.match((e as Error).message, /an I\/O error of domain writer .*while the backup held its point-in-time view/s);
    return true;
  });
  assert.match(await libvirt.virsh('domstate', DOMAIN), /^running/, 'resumed by the failed start');
  assert.ok(wrote);
  const landed = await wrote;
  assert.equal(landed.exitcode, 0, `the guest's dd saw no error:\n${landed.out}`);
  assert.equal(await hostSha256(), landed.sha256);
  await assert.rejects(libvirt.virsh('backup-dumpxml', DOMAIN), /no domain backup job|no job/i);
});

test('a job ended by someone else is seen when libvirt says so: reads fail at once, nothing is recorded', async () => {
  const source = await openLibvirtSource(options({ scratchDir: libvirt.dir }));
  try {
    await libvirt.virsh('domjobabort', DOMAIN);
    const deadline = Date.now() + 10_000;
    // The NBD connection may fail first; once the event is read, every read fails with the break.
    let error: unknown;
    while (Date.now() < deadline) {
      error = await (source.disks[0]?.device.read(0, 4096) ?? Promise.resolve()).then(() => undefined, (e: unknown) => e);
      if (/job-completed/.test(String((error as Error)?.message))) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(isCofferError(error, 'E_SOURCE_UNREADABLE'), String(error));
    assert.match((error as Error).message, /the backup job ended before the backup finished \(libvirt reported job-completed: Operation canceled\)/);
    await assert.rejects(backupVm(repo, source), (e: unknown) => isCofferError(e, 'E_SOURCE_UNREADABLE'));
  } finally {
    await source.close();
  }
  assert.deepEqual(await listSnapshots(repo, { vm: 'writer' }), []);
});

test('a thaw that meets the domain paused (a failed write between freeze and thaw) is sent again after the resume, with no warning', async () => {
  const warnings: string[] = [];
  const freeze = new LibvirtFreeze(new Virsh(libvirt.uri), DOMAIN, true, (reason) => warnings.push(reason));
  await freeze.freeze();
  try {
    assert.equal(freeze.consistency.level, 'application', JSON.stringify(freeze.consistency));
    await libvirt.virsh('suspend', DOMAIN);
    try {
      await freeze.thaw();
      assert.deepEqual(warnings, [], 'no warning while the thaw only waits for the resume');
    } finally {
      await libvirt.virsh('resume', DOMAIN);
    }
    assert.equal(await agent('guest-fsfreeze-status', {}), 'frozen', 'the guest is still frozen: the thaw met the pause');
    await Promise.all([freeze.thawAfterResume(), freeze.thawAfterResume()]);
    assert.equal(await agent('guest-fsfreeze-status', {}), 'thawed');
    assert.deepEqual(warnings, []);
  } finally {
    await libvirt.virsh('domfsthaw', DOMAIN).catch(() => ''); // a failure above must not leave the next test a frozen guest
  }
});

test('a backup with --freeze through libvirt: the snapshot is application-consistent, the guest thawed after it, its disks as the host reads them', async () => {
  const source = await openLibvirtSource(options({ freeze: true, scratchDir: libvirt.dir }));
  let snapshot;
  try {
    snapshot = await backupVm(repo, source);
  } finally {
    await source.close();
  }
  assert.equal(snapshot.consistency?.level, 'application', JSON.stringify(snapshot.consistency));
  assert.ok((snapshot.consistency?.frozenFilesystems ?? 0) >= 1, JSON.stringify(snapshot.consistency));
  assert.equal(await agent('guest-fsfreeze-status', {}), 'thawed');
  assert.deepEqual(snapshot.disks.map((d) => d.name).sort(), ['vda', 'vdb']);
  const vdb = snapshot.disks.find((d) => d.name === 'vdb');
  assert.ok(vdb);
  const restored = Buffer.from(await new SnapshotDisk(repo, snapshot.id, vdb).read(0, WRITE));
  assert.equal(createHash('sha256').update(restored).digest('hex'), await hostSha256(), 'vdb as the host reads it (the guest writes nothing to it now)');
});
