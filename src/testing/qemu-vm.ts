/**
 * A running QEMU for tests: no guest OS, TCG, a QMP unix socket and qcow2 (or raw) disks in a
 * fresh temporary folder, as in shared/notes/test-disks.md ("A running VM without a guest OS").
 * The block layer behaves as with a guest: writes are simulated with HMP `qemu-io`.
 *
 * Always stop it, even when the test fails: `after(() => vm.stop())`. `stop()` kills QEMU
 * (SIGKILL: nothing to save), waits for it to exit and removes the folder; it is idempotent.
 * As a last resort the process is also killed when the test process exits.
 * @example
 * const vm = await startTestVm({ disks: [{ name: 'disk0', size: 64 << 20 }] });
 * after(() => vm.stop());
 * const qmp = await QmpClient.connect({ path: vm.qmpSocket });
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { acceptsConnections } from './daemons.js';
import { requireTools, runTool } from './disks.js';

/** A disk to attach. */
export interface TestVmDiskSpec {
  /** Names the disk: node `NAME`, its file node `NAME-file`, guest device `NAME-dev`. */
  name: string;
  /** Virtual size in bytes. */
  size: number;
  /** Default qcow2. */
  format?: 'qcow2' | 'raw';
  /** An existing image to copy instead of an empty one (its format must be `format`). */
  from?: string;
  /** The guest device: `scsi` (default, `scsi-hd` on virtio-scsi) or `virtio` (`virtio-blk-pci`, /dev/vda… in a Linux guest). */
  bus?: 'scsi' | 'virtio';
}

/** Options of {@link startTestVm}. */
export interface TestVmOptions {
  /** Default: one 64 MiB qcow2 disk named `disk0`. */
  disks?: TestVmDiskSpec[];
  /** Default 64. */
  memoryMiB?: number;
  /** More QEMU arguments (e.g. `-name`, `-uuid`, a chardev). */
  extraArgs?: string[];
  /**
   * Boot a Linux kernel directly (`-kernel`, `-initrd`, `-append`, `-no-reboot`); its serial
   * console (ttyS0) goes to QEMU's stdout, see `output()`. Default: no guest OS.
   */
  kernel?: { vmlinuz: string; initrd: string; append: string };
}

/** An attached disk. */
export interface TestVmDisk {
  name: string;
  /** The format node (what block jobs, bitmaps and exports name). */
  nodeName: string;
  /** The protocol (file) node below it. */
  fileNodeName: string;
  /** The guest device id: `qemu-io -d ID "…"` writes as the guest would. */
  deviceId: string;
  path: string;
  format: 'qcow2' | 'raw';
  size: number;
  bus: 'scsi' | 'virtio';
}

/** A QEMU process for one test file. */
export interface TestVm {
  /** The temporary folder holding the socket and the disks; removed by `stop()`. */
  dir: string;
  qmpSocket: string;
  pid: number;
  disks: TestVmDisk[];
  /** Resolves when QEMU has exited. */
  exited: Promise<void>;
  /** The last 64 KiB QEMU printed (stdout: HMP qemu-io results and a booted guest's serial console; stderr: errors). */
  output(): string;
  /** Sends a signal (SIGSTOP freezes QEMU to test stalls, SIGCONT resumes, SIGKILL kills). */
  signal(signal: NodeJS.Signals): void;
  /** Kills QEMU, waits for it, removes `dir`. Idempotent. */
  stop(): Promise<void>;
}

const OUTPUT_KEEP = 64 * 1024;
const START_TIMEOUT_MS = 10_000;

/** Starts QEMU and waits until its QMP socket exists. */
export async function startTestVm(options: TestVmOptions = {}): Promise<TestVm> {
  await requireTools('qemu-system-x86_64', 'qemu-img');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-vm-'));
  const disks: TestVmDisk[] = [];
  try {
    for (const spec of options.disks ?? [{ name: 'disk0', size: 64 * 1024 * 1024 }]) {
      if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(spec.name)) throw new RangeError(`bad disk name ${spec.name}`);
      const format = spec.format ?? 'qcow2';
      const file = path.join(dir, `${spec.name}.${format}`);
      if (spec.from !== undefined) await fs.copyFile(spec.from, file);
      else await runTool('qemu-img', ['create', '-q', '-f', format, file, String(spec.size)]);
      disks.push({ name: spec.name, nodeName: spec.name, fileNodeName: `${spec.name}-file`, deviceId: `${spec.name}-dev`, path: file, format, size: spec.size, bus: spec.bus ?? 'scsi' });
    }
  } catch (err) {
    await fs.rm(dir, { recursive: true, force: true });
    throw err;
  }

  const qmpSocket = path.join(dir, 'qmp.sock');
  const args = [
    '-machine', 'q35,accel=tcg', '-nodefaults', '-display', 'none', '-m', String(options.memoryMiB ?? 64),
    '-qmp', `unix:${qmpSocket},server=on,wait=off`,
    '-device', 'virtio-scsi-pci,id=scsi0',
  ];
  for (const d of disks) {
    args.push(
      '-blockdev', `driver=file,filename=${d.path},node-name=${d.fileNodeName}`,
      '-blockdev', `driver=${d.format},file=${d.fileNodeName},node-name=${d.nodeName}`,
      '-device', d.bus === 'virtio' ? `virtio-blk-pci,id=${d.deviceId},drive=${d.nodeName}` : `scsi-hd,id=${d.deviceId},drive=${d.nodeName}`,
    );
  }
  if (options.kernel !== undefined) {
    args.push('-kernel', options.kernel.vmlinuz, '-initrd', options.kernel.initrd, '-append', options.kernel.append, '-no-reboot', '-serial', 'stdio');
  }
  args.push(...(options.extraArgs ?? []));

  const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_KEEP);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  child.once('error', (err) => keep(Buffer.from(`\n${err.message}\n`)));
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const vm: TestVm = {
    dir,
    qmpSocket,
    pid: child.pid ?? -1,
    disks,
    exited,
    output: () => output,
    signal: (signal) => {
      if (isRunning(child)) child.kill(signal);
    },
    stop: () => {
      stopping ??= (async () => {
        if (isRunning(child)) child.kill('SIGKILL');
        await exited;
        process.removeListener('exit', killOnExit);
        await fs.rm(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };

  try {
    // Every QMP monitor, the tests' own (`-qmp unix:PATH,…` in extraArgs) included: a socket
    // file exists from bind() on, but refuses connections until QEMU listens on it.
    const monitors = [qmpSocket, ...(options.extraArgs ?? []).flatMap((arg, i, all) => (all[i - 1] === '-qmp' && arg.startsWith('unix:') ? [arg.slice(5).split(',')[0] as string] : []))];
    for (const monitor of monitors) await waitForSocket(monitor, exited, () => output);
  } catch (err) {
    await vm.stop();
    throw err;
  }
  return vm;
}

/** True when something listens on the unix socket (the connection is closed at once). */
function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

async function waitForSocket(socket: string, exited: Promise<void>, output: () => string): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (gone) throw new Error(`qemu-system-x86_64 exited at start:\n${output()}`);
    if (await acceptsConnections(socket)) return;
    if (Date.now() > deadline) throw new Error(`qemu-system-x86_64 made no QMP socket within ${START_TIMEOUT_MS} ms:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
