/**
 * A private libvirt for tests: a session-mode `libvirtd` run as user `nobody` with every
 * folder (runtime, config, cache, images) inside one fresh temporary folder, reached at
 * `qemu+unix:///session?socket=…`. It never touches a system libvirtd, /etc/libvirt or
 * /var/lib/libvirt, needs no systemd, D-Bus or libvirt-daemon-system, and the daemon starts its
 * own virtlogd. QEMU runs as `nobody` too, so the test's images and any folder QEMU writes in
 * belong to it. Domains are `type='qemu'` (TCG: /dev/kvm cannot run guest code on these
 * machines), q35, no guest OS; guest writes are simulated with HMP `qemu-io` through
 * `virsh qemu-monitor-command` on `/machine/peripheral/virtio-diskN/virtio-backend`.
 *
 * Always `after(() => libvirt.stop())`: it destroys every domain, stops libvirtd and virtlogd
 * (by the pids in their pid files) and removes the folder; idempotent.
 * @example
 * const libvirt = await startTestLibvirt();
 * after(() => libvirt.stop());
 * const domain = await libvirt.startDomain({ name: 'web01', disks: [{ target: 'vda', size: 32 << 20 }] });
 * await domain.write('vda', 1 << 20, 65536, 0xab);
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { requireTools, runTool } from './disks.js';

/** uid/gid of `nobody`/`nogroup` on Debian. */
const NOBODY = { uid: 65534, gid: 65534 };
const START_TIMEOUT_MS = 20_000;
const VIRSH_TIMEOUT_MS = 60_000;

export interface TestDomainDiskSpec {
  /** Target device, `vda`, `vdb`… (virtio). */
  target: string;
  size: number;
  /** Default qcow2. */
  format?: 'qcow2' | 'raw';
  /** Attach read-only (a disk backup must leave out). */
  readOnly?: boolean;
  /** An existing image to copy instead of an empty one (its format must be `format`). */
  from?: string;
}

/**
 * A Linux guest booted directly (`<kernel>`, `<initrd>`, `<cmdline>`): its serial console goes
 * to a file ({@link TestDomain.console}), and it gets the guest agent's virtio-serial channel
 * (`org.qemu.guest_agent.0`, which libvirt connects to: `virsh qemu-agent-command`).
 * The files are copied where the daemon's user can read them.
 */
export interface TestDomainGuest {
  vmlinuz: string;
  initrd: string;
  cmdline: string;
  /** Default 256. */
  memoryMiB?: number;
}

export interface TestDomainDisk {
  target: string;
  path: string;
  format: 'qcow2' | 'raw';
  size: number;
  /** The QOM path `qemu-io -d` writes through, as the guest would. */
  qdev: string;
}

/**
 * Debian's OVMF (package ovmf) without Secure Boot, 4 MiB build: the code on the read-only
 * flash, the variable store made by libvirt from the template at the domain's first start.
 */
export const TEST_OVMF = { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', varsTemplate: '/usr/share/OVMF/OVMF_VARS_4M.fd' } as const;

export interface TestDomain {
  name: string;
  disks: TestDomainDisk[];
  /** The UEFI variable store (`<os><nvram>`) of a domain started with `uefi`. */
  nvram?: string;
  /** A guest write of `length` bytes of `pattern` at `offset` (HMP qemu-io). */
  write(target: string, offset: number, length: number, pattern: number): Promise<void>;
  /** What a booted guest printed on its serial console so far ("" without a guest). */
  console(): Promise<string>;
}

export interface TestLibvirt {
  /** The URI to pass to `virsh -c` and `--connect`. */
  uri: string;
  dir: string;
  /** `virsh -c URI ARGS…`, its stdout (throws with stderr on failure). */
  virsh(...args: string[]): Promise<string>;
  /**
   * Defines and starts a domain with fresh images (owned by the daemon's user). `uefi`: it boots
   * through {@link TEST_OVMF} (ACPI on, as UEFI needs; 256 MiB, as a guest), its store
   * `NAME_VARS.fd` in the images folder, its serial console to a file as a guest's. `paused`: `virsh start --paused`.
   */
  startDomain(options: { name: string; disks: TestDomainDiskSpec[]; guest?: TestDomainGuest; uefi?: boolean; paused?: boolean }): Promise<TestDomain>;
  stop(): Promise<void>;
}

/** Starts a private session libvirtd; resolves once it answers. */
export async function startTestLibvirt(): Promise<TestLibvirt> {
  await requireTools('libvirtd', 'virsh', 'qemu-system-x86_64', 'qemu-img');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-libvirt-test-'));
  const sub = (name: string): string => path.join(dir, name);
  for (const name of ['run', 'config', 'cache', 'home', 'images']) await fs.mkdir(sub(name), { mode: 0o700 });
  await chownTree(dir);
  const runtime = sub('run');
  const socket = path.join(runtime, 'libvirt', 'libvirt-sock');
  const uri = `qemu+unix:///session?socket=${socket}`;
  const child = spawn('/usr/sbin/libvirtd', ['--timeout', '0'], {
    ...NOBODY,
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: sub('home'), XDG_RUNTIME_DIR: runtime, XDG_CONFIG_HOME: sub('config'), XDG_CACHE_HOME: sub('cache'), LC_ALL: 'C' },
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr = (stderr + text).slice(-16_384)));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const domains: string[] = [];
  const virsh = (...args: string[]): Promise<string> => runVirsh(uri, args);
  // Last resort when the test process exits without stop(): QEMU and virtlogd outlive libvirtd.
  const killOnExit = (): void => {
    child.kill('SIGKILL');
    for (const file of qemuPidFilesSync(runtime)) killPidSync(file);
    killPidSync(path.join(runtime, 'libvirt', 'virtlogd.pid'));
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const libvirt: TestLibvirt = {
    uri,
    dir,
    virsh,
    async startDomain(options) {
      const disks: TestDomainDisk[] = [];
      const diskXml: string[] = [];
      for (const spec of options.disks) {
        const format = spec.format ?? 'qcow2';
        const file = path.join(sub('images'), `${options.name}-${spec.target}.${format}`);
        if (spec.from !== undefined) await fs.copyFile(spec.from, file);
        else await runTool('qemu-img', ['create', '-q', '-f', format, file, String(spec.size)]);
        await fs.chown(file, NOBODY.uid, NOBODY.gid);
        disks.push({ target: spec.target, path: file, format, size: spec.size, qdev: '' });
        diskXml.push(
          `<disk type='file' device='disk'><driver name='qemu' type='${format}'/><source file='${file}'/><target dev='${spec.target}' bus='virtio'/>${spec.readOnly ? '<readonly/>' : ''}</disk>`,
        );
      }
      const consoleLog = path.join(sub('images'), `${options.name}-console.log`);
      let boot = '';
      let guestDevices = '';
      const nvram = options.uefi === true ? path.join(sub('images'), `${options.name}_VARS.fd`) : undefined;
      if (nvram !== undefined) {
        if (options.guest !== undefined) throw new Error('a test domain boots a guest kernel or UEFI firmware, not both');
        boot = `<loader readonly='yes' type='pflash'>${TEST_OVMF.code}</loader><nvram template='${TEST_OVMF.varsTemplate}'>${nvram}</nvram>`;
        guestDevices = `<serial type='file'><source path='${consoleLog}'/><target port='0'/></serial>`;
      }
      if (options.guest !== undefined) {
        const kernel = path.join(sub('images'), `${options.name}-vmlinuz`);
        const initrd = path.join(sub('images'), `${options.name}-initrd`);
        await fs.copyFile(options.guest.vmlinuz, kernel);
        await fs.copyFile(options.guest.initrd, initrd);
        for (const f of [kernel, initrd]) await fs.chown(f, NOBODY.uid, NOBODY.gid);
        boot = `<kernel>${kernel}</kernel><initrd>${initrd}</initrd><cmdline>${options.guest.cmdline}</cmdline>`;
        // The channel's socket named here: libvirt's default path is too long for a unix socket under a test folder.
        guestDevices = `<serial type='file'><source path='${consoleLog}'/><target port='0'/></serial>` +
          `<channel type='unix'><source mode='bind' path='${path.join(sub('images'), `${options.name}-qga.sock`)}'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>`;
      }
      const xml = [
        `<domain type='qemu'><name>${options.name}</name><memory unit='MiB'>${options.guest?.memoryMiB ?? (options.guest || nvram !== undefined ? 256 : 64)}</memory><vcpu>1</vcpu>`,
        `<os><type arch='x86_64' machine='q35'>hvm</type>${boot}</os>${nvram !== undefined ? '<features><acpi/></features>' : ''}<on_reboot>destroy</on_reboot>`,
        `<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>${diskXml.join('')}${guestDevices}`,
        `<video><model type='none'/></video><memballoon model='none'/></devices></domain>`,
      ].join('');
      const file = path.join(dir, `${options.name}.xml`);
      await fs.writeFile(file, xml);
      await virsh('define', file);
      domains.push(options.name);
      await virsh('start', ...(options.paused === true ? ['--paused'] : []), options.name);
      // The device id is libvirt's alias of the disk (virtio-disk<N>, N from the target's letter).
      const live = await virsh('dumpxml', options.name);
      for (const d of disks) {
        const block = [...live.matchAll(/<disk[ >][\s\S]*?<\/disk>/g)].map((m) => m[0]).find((b) => b.includes(`<target dev='${d.target}'`));
        const alias = /<alias name='([^']+)'\/>/.exec(block ?? '')?.[1];
        if (alias === undefined) throw new Error(`domain ${options.name}: no alias for disk ${d.target}`);
        d.qdev = `/machine/peripheral/${alias}/virtio-backend`;
      }
      const blocks = JSON.parse(await virsh('qemu-monitor-command', options.name, '{"execute":"query-block"}')) as { return: { qdev?: string }[] };
      for (const d of disks) {
        if (!blocks.return.some((b) => b.qdev === d.qdev)) throw new Error(`domain ${options.name}: no device ${d.qdev} (query-block: ${JSON.stringify(blocks.return.map((b) => b.qdev))})`);
      }
      return {
        name: options.name,
        disks,
        ...(nvram !== undefined ? { nvram } : {}),
        async write(target, offset, length, pattern) {
          const disk = disks.find((d) => d.target === target);
          if (disk === undefined) throw new Error(`no disk ${target}`);
          const out = await virsh('qemu-monitor-command', options.name, '--hmp', `qemu-io -d ${disk.qdev} "write -P ${pattern} ${offset} ${length}"`);
          if (out.trim() !== '') throw new Error(`qemu-io write on ${target}: ${out.trim()}`);
        },
        console: () => fs.readFile(consoleLog, 'utf8').catch(() => ''),
      };
    },
    stop() {
      stopping ??= (async () => {
        for (const name of domains) await virsh('destroy', name).catch(() => '');
        for (const pidFile of await qemuPidFiles(runtime)) await killPidFile(pidFile); // a destroy that failed
        if (isRunning(child)) child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
        process.removeListener('exit', killOnExit);
        await killPidFile(path.join(runtime, 'libvirt', 'virtlogd.pid'));
        await fs.rm(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (!isRunning(child)) {
      await libvirt.stop();
      throw new Error(`libvirtd exited at start: ${stderr}`);
    }
    if (await fs.access(socket).then(() => true, () => false)) {
      if (await virsh('version').then(() => true, () => false)) return libvirt;
    }
    if (Date.now() > deadline) {
      await libvirt.stop();
      throw new Error(`libvirtd did not answer within ${START_TIMEOUT_MS} ms: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function runVirsh(uri: string, args: string[]): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const child = spawn('virsh', ['-c', uri, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    const timer = setTimeout(() => child.kill('SIGKILL'), VIRSH_TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`virsh ${args.join(' ')}: ${stderr.trim() || `exit ${code ?? signal}`}`));
    });
  });
}

async function chownTree(dir: string): Promise<void> {
  await fs.chown(dir, NOBODY.uid, NOBODY.gid);
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await chownTree(path.join(dir, entry.name));
  }
}

async function qemuPidFiles(runtime: string): Promise<string[]> {
  const folder = path.join(runtime, 'libvirt', 'qemu', 'run');
  const names = await fs.readdir(folder).catch(() => [] as string[]);
  return names.filter((n) => n.endsWith('.pid') && n !== 'driver.pid').map((n) => path.join(folder, n));
}

function qemuPidFilesSync(runtime: string): string[] {
  const folder = path.join(runtime, 'libvirt', 'qemu', 'run');
  try {
    return readdirSync(folder).filter((n) => n.endsWith('.pid') && n !== 'driver.pid').map((n) => path.join(folder, n));
  } catch {
    return [];
  }
}

function killPidSync(file: string): void {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 1) process.kill(pid, 'SIGKILL');
  } catch {
    // no file, or already gone
  }
}

async function killPidFile(file: string): Promise<void> {
  const pid = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 1) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}
