/**
 * A real Linux guest running the real QEMU guest agent, booted under TCG in a few seconds:
 * the Debian cloud kernel (`-kernel`) and an initramfs built here from Debian's .deb files —
 * busybox, the virtio modules the cloud kernel does not build in (virtio_pci, virtio_blk,
 * virtio_console and what they depend on, read from each module's `depends=`), and qemu-ga
 * with the shared libraries `ldd` names (host and guest are the same Debian release, so the
 * host's files are the right ones, the ld-linux loader included).
 *
 * Its /init mounts devtmpfs, loads the modules, mounts the ext4 filesystem of its first disk
 * (/dev/vda, a 16 MiB image made by mke2fs: something for a freeze to freeze), finds the
 * port named `org.qemu.guest_agent.0` in /sys/class/virtio-ports (devtmpfs names it
 * /dev/vportNpM; there is no udev for the /dev/virtio-ports/ link), prints
 * `COFFER-AGENT-READY` on the serial console and execs `qemu-ga -m virtio-serial -p PORT`.
 * With `agent: false` it prints the mark and sleeps instead: a channel nobody answers.
 * The initramfs and the ext4 image are built once (cachedFixture).
 * @example
 * const guest = await startAgentGuest();
 * after(() => guest.stop());
 * // guest.vm.qmpSocket, guest.agentSocket
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { debianPackage, guestKernel, unpackDebianPackage } from './debian-packages.js';
import { cachedFixture, requireTools, runTool } from './disks.js';
import { startTestVm, type TestVm } from './qemu-vm.js';

const execFileAsync = promisify(execFile);

/** The modules the guest needs; their dependencies are added from the .ko files. */
const MODULES = ['virtio_pci', 'virtio_blk', 'virtio_console'];
/** Where those modules and their dependencies live in the kernel package. */
const MODULE_FOLDERS = ['kernel/drivers/virtio', 'kernel/drivers/block/virtio_blk.ko', 'kernel/drivers/char/virtio_console.ko'];
const READY_MARK = 'COFFER-AGENT-READY';
const BOOT_TIMEOUT_MS = 90_000;

/** Options of {@link startAgentGuest}. */
export interface AgentGuestOptions {
  /** Start qemu-ga in the guest (default true); false leaves the channel unanswered. */
  agent?: boolean;
  /** Give the VM the agent's virtio-serial port (default true). */
  channel?: boolean;
  /** More QEMU arguments (a second QMP monitor...). */
  extraArgs?: string[];
}

/**
 * A booted guest. Its one disk is startTestVm's `disk0` (raw, virtio-blk, device `disk0-dev`).
 * `stop()` kills QEMU and removes its files; idempotent.
 */
export interface AgentGuest {
  vm: TestVm;
  /** The host end of the agent channel (nothing listens there without `channel`). */
  agentSocket: string;
  stop(): Promise<void>;
}

/** The guest's initramfs (gzip newc cpio), built once. */
export async function agentGuestInitramfs(): Promise<string> {
  await requireTools('cpio', 'gzip', 'ldd', 'dpkg-deb');
  const kernel = await guestKernel();
  const busybox = await debianPackage('busybox-static');
  const agent = await debianPackage('qemu-guest-agent');
  return cachedFixture('agent-guest-initrd', { recipe: 1, kernel: path.basename(kernel.deb), busybox: path.basename(busybox), agent: path.basename(agent) }, async (tmp) => {
    const work = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-initrd-'));
    try {
      const root = path.join(work, 'root');
      for (const dir of ['bin', 'dev', 'proc', 'sys', 'mnt', 'tmp', 'var/run', 'usr/sbin', 'lib/modules']) await fs.mkdir(path.join(root, dir), { recursive: true });
      await unpackDebianPackage(busybox, path.join(work, 'busybox'), ['./bin/busybox']);
      await fs.copyFile(path.join(work, 'busybox', 'bin', 'busybox'), path.join(root, 'bin', 'busybox'));
      for (const applet of ['sh', 'mount', 'echo', 'cat', 'insmod', 'ls', 'sleep', 'grep']) await fs.symlink('busybox', path.join(root, 'bin', applet));
      await unpackDebianPackage(agent, path.join(work, 'agent'), ['./usr/sbin/qemu-ga']);
      const qemuGa = path.join(work, 'agent', 'usr', 'sbin', 'qemu-ga');
      await fs.copyFile(qemuGa, path.join(root, 'usr', 'sbin', 'qemu-ga'));
      for (const library of await sharedLibraries(qemuGa)) {
        await fs.mkdir(path.join(root, path.dirname(library)), { recursive: true });
        await fs.copyFile(library, path.join(root, library)); // follows the host's symlinks
      }
      const modulesDir = path.join(work, 'kernel');
      const base = `./lib/modules/${kernel.release}`;
      await unpackDebianPackage(kernel.deb, modulesDir, MODULE_FOLDERS.map((m) => `${base}/${m}`));
      const order = await moduleLoadOrder(path.join(modulesDir, 'lib', 'modules', kernel.release), MODULES);
      for (const [name, file] of order) await fs.copyFile(file, path.join(root, 'lib', 'modules', `${name}.ko`));
      await fs.writeFile(path.join(root, 'init'), initScript(order.map(([name]) => name)), { mode: 0o755 });
      await execFileAsync('/bin/sh', ['-c', `cd '${root}' && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1 > '${tmp}'`]);
    } finally {
      await fs.rm(work, { recursive: true, force: true });
    }
  });
}

/** The 16 MiB ext4 image the guest mounts, built once (copy it: the guest writes to it). */
export async function agentGuestFilesystem(): Promise<string> {
  return cachedFixture('agent-guest-ext4', { size: '16M' }, async (tmp) => {
    await runTool('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'agentfs', tmp, '16M']);
  });
}

/** Boots the guest (see the module) and waits until its /init says the agent starts. */
export async function startAgentGuest(options: AgentGuestOptions = {}): Promise<AgentGuest> {
  const kernel = await guestKernel();
  const initrd = await agentGuestInitramfs();
  const filesystem = await agentGuestFilesystem();
  const socketDir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-qga-'));
  const agentSocket = path.join(socketDir, 'qga.sock');
  const channel = options.channel === false ? [] : [
    '-device', 'virtio-serial-pci,id=vser0',
    '-chardev', `socket,path=${agentSocket},server=on,wait=off,id=qga0`,
    '-device', 'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0',
  ];
  let vm: TestVm;
  try {
    vm = await startTestVm({
      disks: [{ name: 'disk0', size: 16 * 1024 * 1024, format: 'raw', from: filesystem, bus: 'virtio' }],
      memoryMiB: 256,
      kernel: { vmlinuz: kernel.vmlinuz, initrd, append: `console=ttyS0 quiet panic=-1 coffer.agent=${options.agent === false || options.channel === false ? 0 : 1}` },
      extraArgs: [...channel, ...(options.extraArgs ?? [])],
    });
  } catch (error) {
    await fs.rm(socketDir, { recursive: true, force: true });
    throw error;
  }
  const stop = async (): Promise<void> => {
    await vm.stop();
    await fs.rm(socketDir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + BOOT_TIMEOUT_MS;
    let exited = false;
    void vm.exited.then(() => (exited = true));
    while (!vm.output().includes(READY_MARK)) {
      if (vm.output().includes('COFFER-AGENT-FAIL') || exited || Date.now() > deadline) throw new Error(`the agent guest did not boot:\n${vm.output().slice(-4000)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { vm, agentSocket, stop };
}

/**
 * A shell script for the guest (run as `/bin/busybox sh -c SCRIPT` through the agent's
 * guest-exec): writes `mib` MiB of fresh random bytes at the start of `device` with
 * `conv=fsync` (made in RAM first, so the write is one burst) and prints the dd's exit status
 * and the bytes' SHA-256; {@link readGuestOverwrite} reads its output.
 */
export function guestOverwriteScript(device: string, mib: number): string {
  return [
    `busybox dd if=/dev/urandom of=/tmp/new bs=1M count=${mib} 2>/dev/null`,
    `busybox dd if=/tmp/new of=${device} bs=1M conv=fsync 2>&1; echo "dd-exit $?"`,
    'busybox sha256sum /tmp/new',
  ].join('\n');
}

/** What {@link guestOverwriteScript} printed: the dd's exit status (-1 when absent) and the SHA-256 of what it wrote. */
export function readGuestOverwrite(out: string): { exitcode: number; sha256: string; out: string } {
  return { exitcode: Number(/dd-exit (\d+)/.exec(out)?.[1] ?? -1), sha256: /^([0-9a-f]{64})\s/m.exec(out)?.[1] ?? '', out };
}

/** The SHA-256 of the first `mib` MiB of a raw image file: where {@link guestOverwriteScript} wrote, as the host reads it. */
export async function imageStartSha256(file: string, mib: number): Promise<string> {
  const handle = await fs.open(file, 'r');
  try {
    const bytes = Buffer.alloc(mib * 1024 * 1024);
    await handle.read(bytes, 0, bytes.length, 0);
    return createHash('sha256').update(bytes).digest('hex');
  } finally {
    await handle.close();
  }
}

/** The absolute paths `ldd` lists for `binary` (the vdso, which has none, is skipped). */
async function sharedLibraries(binary: string): Promise<string[]> {
  const { stdout } = await execFileAsync('ldd', [binary]);
  const found = [...stdout.matchAll(/(?:=>\s*)?(\/[^\s]+)\s+\(0x/g)].map((m) => m[1] as string);
  if (found.length === 0) throw new Error(`ldd ${binary} listed no library:\n${stdout}`);
  return found;
}

/**
 * Modules in an order insmod accepts: each after what its `.modinfo` `depends=` names.
 * Returns `[name, file]` pairs; throws when a dependency is not among the files unpacked.
 */
async function moduleLoadOrder(modulesRoot: string, wanted: string[]): Promise<[string, string][]> {
  const files = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.name.endsWith('.ko')) files.set(entry.name.slice(0, -3).replace(/-/g, '_'), full);
    }
  };
  await walk(modulesRoot);
  const order: [string, string][] = [];
  const visit = async (name: string, chain: string[]): Promise<void> => {
    if (order.some(([n]) => n === name)) return;
    if (chain.includes(name)) throw new Error(`module dependency cycle: ${[...chain, name].join(' → ')}`);
    const file = files.get(name);
    if (file === undefined) throw new Error(`module ${name} (needed by ${chain.at(-1) ?? 'the guest'}) is not in the kernel package folders unpacked`);
    const info = (await fs.readFile(file)).toString('latin1');
    const depends = /\0depends=([^\0]*)\0/.exec(info)?.[1] ?? '';
    for (const dep of depends.split(',').filter((d) => d !== '')) await visit(dep.replace(/-/g, '_'), [...chain, name]);
    order.push([name, file]);
  };
  for (const name of wanted) await visit(name, []);
  return order;
}

function initScript(modules: string[]): string {
  return `#!/bin/busybox sh
export PATH=/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in ${modules.join(' ')}; do insmod /lib/modules/$m.ko || echo "COFFER-AGENT-FAIL insmod $m"; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
mount -t ext4 /dev/vda /mnt || echo "COFFER-AGENT-FAIL mount /dev/vda"
echo data > /mnt/written-by-guest
if grep -q coffer.agent=0 /proc/cmdline; then echo "${READY_MARK} without agent"; exec sleep 1000000; fi
PORT=
i=0
while [ -z "$PORT" ] && [ $i -lt 200 ]; do
  for p in /sys/class/virtio-ports/*; do
    [ "$(cat $p/name 2>/dev/null)" = org.qemu.guest_agent.0 ] && PORT=/dev/\${p##*/}
  done
  [ -z "$PORT" ] && sleep 0.05
  i=$((i+1))
done
[ -n "$PORT" ] || echo "COFFER-AGENT-FAIL no org.qemu.guest_agent.0 port"
echo "${READY_MARK} $PORT"
exec qemu-ga -m virtio-serial -p $PORT
`;
}
