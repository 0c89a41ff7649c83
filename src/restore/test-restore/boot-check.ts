import { spawn } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import * as fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CofferError } from '../../errors/index.js';
import { plainConsoleText } from '../../names/index.js';
import { NbdServer, type NbdExport } from '../../nbd/index.js';
import type { Repository, Snapshot } from '../../repo/index.js';
import { SnapshotDisk } from '../snapshot-disk.js';
import { bootHints } from '../vm/boot-hints.js';
import { planFirmware, type BootFirmwareChoice, type FirmwarePlan } from './boot-firmware.js';
import type { BootResult } from './report.js';

/** How the disks are attached: the bus the guest's drivers must know. */
export type BootBus = 'virtio' | 'sata' | 'ide' | 'scsi';
export const BOOT_BUSES: readonly BootBus[] = ['virtio', 'sata', 'ide', 'scsi'];

/** Options of {@link bootCheck}. */
export interface BootCheckOptions {
  /** Text whose appearance on the serial console means the VM came up (default `login:`). */
  expect?: string;
  /** How long to wait for it (default 5 minutes). */
  timeoutMs?: number;
  /** `kvm`, `tcg`, or `auto` (default: KVM when /dev/kvm can be opened, else TCG). */
  accel?: 'kvm' | 'tcg' | 'auto';
  /** Default: the VM's own (from its stored definition), else `sata` (AHCI: every modern OS has its driver). */
  bus?: BootBus;
  /** Guest memory in MiB. Default: the VM's own, else 1024. */
  memoryMiB?: number;
  /** QEMU machine type. Default: the VM's own (`pc-i440fx-7.2`, `pc-q35-7.2`…), else `q35`. */
  machine?: string;
  /** `bios`, `uefi`, or `auto` (default: from the VM's definition, else from its first disk: boot-firmware.ts). */
  firmware?: BootFirmwareChoice;
  /** Where QEMU firmware descriptors are looked for (default: QEMU's folders, uefi-firmware.ts). */
  firmwareFolders?: readonly string[];
  /** The QEMU binary (default `qemu-system-x86_64` on the PATH). */
  qemu?: string;
  /** Where the NBD socket goes (default: a new folder in the system's temporary folder). */
  workDir?: string;
  signal?: AbortSignal;
}

/** Lines of the serial console kept in the result. */
const SERIAL_TAIL_LINES = 40;

/**
 * Boots the VM of a snapshot straight from the backup, isolated, and watches its serial
 * console: the snapshot's disks are exported read-only over NBD on a private unix socket,
 * QEMU attaches them with `snapshot=on` (guest writes go to QEMU's temporary overlay; the
 * repository is never written), with no network card at all, and is killed as soon as the
 * expected text appears on the first serial port, or at the deadline. The guest must print
 * to its serial console (Linux: `console=ttyS0`; a login prompt on ttyS0 needs a getty there).
 */
export async function bootCheck(repo: Repository, snapshot: Snapshot, options: BootCheckOptions = {}): Promise<BootResult> {
  const expect = options.expect ?? 'login:';
  if (expect === '') throw new CofferError('E_USAGE', 'the text to wait for on the serial console cannot be empty');
  const timeoutMs = options.timeoutMs ?? 5 * 60_000;
  const hints = bootHints(snapshot.definition);
  const bus = options.bus ?? hints.bus ?? 'sata';
  const machine = options.machine ?? hints.machine ?? 'q35';
  const memoryMiB = options.memoryMiB ?? hints.memoryMiB ?? 1024;
  const accel = options.accel === undefined || options.accel === 'auto' ? ((await canOpen('/dev/kvm')) ? 'kvm' : 'tcg') : options.accel;
  const started = Date.now();
  const dir = await fsp.mkdtemp(path.join(options.workDir ?? os.tmpdir(), 'coffer-boot-'));
  const disks = snapshot.disks.map((disk) => new SnapshotDisk(repo, snapshot.id, disk));
  let server: NbdServer | undefined;
  try {
    const plan = await planFirmware(options.firmware ?? 'auto', hints, disks.map((d) => ({ name: d.disk.name, device: d })), machine, options.firmwareFolders);
    const base = { expect, accel, bus, machine, firmware: firmwareReport(plan) };
    if ('missing' in plan) return { ...base, passed: false, reason: plan.missing, serialTail: '', durationMs: Date.now() - started };
    const socket = path.join(dir, 'nbd.sock');
    const exports: Record<string, NbdExport> = {};
    for (const disk of disks) exports[disk.disk.name] = { device: disk, description: `coffer boot check ${snapshot.id.slice(0, 8)} ${disk.disk.name}` };
    server = await NbdServer.listen({ socket }, { exports });
    const firmware = plan.kind === 'uefi' ? await uefiArguments(plan, dir, socket) : { machine: '', args: [] };
    const args = [
      '-machine', `${machine},accel=${accel}${firmware.machine}`, '-m', String(memoryMiB), '-nodefaults', '-display', 'none',
      '-no-reboot', '-boot', 'strict=on,reboot-timeout=1000', '-nic', 'none', '-serial', 'stdio', '-monitor', 'none',
      ...firmware.args,
      // The VM's variable store is the firmware's: on the flash (its own) or left out (BIOS, an empty store), never a disk.
      ...diskArguments(snapshot.disks.map((d) => d.name).filter((name) => !(hints.firmwareVars ?? []).includes(name)), socket, bus, /q35/.test(machine)),
    ];
    const result = await runUntilText(options.qemu ?? 'qemu-system-x86_64', args, expect, timeoutMs, options.signal);
    return { ...result, ...base, durationMs: Date.now() - started };
  } finally {
    await server?.close().catch(() => {});
    for (const disk of disks) await disk.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/** The firmware part of the report. */
function firmwareReport(plan: FirmwarePlan): NonNullable<BootResult['firmware']> {
  if (plan.kind === 'bios' || 'missing' in plan) return { kind: plan.kind, why: plan.why };
  const { firmware } = plan;
  return { kind: 'uefi', why: plan.why, description: firmware.description, code: firmware.code.filename, secureBoot: firmware.secureBoot, varsFromBackup: plan.varsDisk !== undefined };
}

/**
 * QEMU options for UEFI firmware: its code read-only on flash unit 0, the variable store on
 * unit 1 — the VM's own from the backup (over NBD, writes to QEMU's temporary overlay like
 * the disks') or a copy of the firmware's empty template in the work folder. Firmware that
 * requires SMM (Secure Boot builds) gets `smm=on` and a flash only SMM code may write.
 */
async function uefiArguments(plan: Extract<FirmwarePlan, { firmware: unknown }>, dir: string, socket: string): Promise<{ machine: string; args: string[] }> {
  const { code, varsTemplate } = plan.firmware;
  const flash = (unit: number, file: string, format: string, extra: string) => ['-drive', `if=pflash,unit=${unit},format=${format},file=${file.replace(/,/g, ',,')}${extra}`];
  let vars: string[];
  if (plan.varsDisk !== undefined) {
    vars = flash(1, `nbd+unix:///${encodeURIComponent(plan.varsDisk)}?socket=${socket}`, 'raw', ',snapshot=on');
  } else {
    const copy = path.join(dir, `vars.${varsTemplate.format}`);
    await fsp.copyFile(varsTemplate.filename, copy);
    vars = flash(1, copy, varsTemplate.format, '');
  }
  const smm = plan.firmware.requiresSmm;
  return {
    machine: smm ? ',smm=on' : '',
    args: [...(smm ? ['-global', 'driver=cfi.pflash01,property=secure,value=on'] : []), ...flash(0, code.filename, code.format, ',readonly=on'), ...vars],
  };
}

/**
 * QEMU options attaching each export, the first disk first in the boot order. On q35, `sata`
 * and `ide` both use the built-in AHCI controller (ports ide.0 … ide.5); on the i440fx `pc`
 * machines, `ide` is the PIIX controller (two buses, two units each) and `sata` adds an AHCI
 * controller.
 */
function diskArguments(names: string[], socket: string, bus: BootBus, q35: boolean): string[] {
  const args: string[] = bus === 'scsi' ? ['-device', 'virtio-scsi-pci,id=scsi0'] : bus === 'sata' && !q35 ? ['-device', 'ahci,id=ahci0'] : [];
  names.forEach((name, i) => {
    const file = `nbd+unix:///${encodeURIComponent(name)}?socket=${socket}`;
    args.push('-drive', `file=${file.replace(/,/g, ',,')},format=raw,if=none,id=d${i},snapshot=on,cache=unsafe`);
    const device = { virtio: 'virtio-blk-pci', sata: 'ide-hd', ide: 'ide-hd', scsi: 'scsi-hd' }[bus];
    let where = '';
    if (bus === 'scsi') where = ',bus=scsi0.0';
    else if (bus !== 'virtio') where = q35 ? `,bus=ide.${i}` : bus === 'sata' ? `,bus=ahci0.${i}` : `,bus=ide.${Math.floor(i / 2)},unit=${i % 2}`;
    args.push('-device', `${device},drive=d${i}${where},bootindex=${i + 1}`);
  });
  return args;
}

/** Runs QEMU until `expect` shows on its stdout (the serial port), it exits, or the deadline. */
async function runUntilText(
  qemu: string,
  args: string[],
  expect: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Pick<BootResult, 'passed' | 'reason' | 'serialTail' | 'secondsToText'>> {
  const started = Date.now();
  const child = spawn(qemu, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let serial = '';
  let stderr = '';
  let seenAt: number | undefined;
  const done = new Promise<{ code: number | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, error }));
    child.once('close', (code) => resolve({ code }));
  });
  child.stdout.setEncoding('latin1').on('data', (text: string) => {
    serial = (serial + text).slice(-256 * 1024);
    if (seenAt === undefined && serial.includes(expect)) {
      seenAt = Date.now();
      child.kill('SIGKILL');
    }
  });
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr = (stderr + text).slice(-16 * 1024)));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const abort = () => child.kill('SIGKILL');
  signal?.addEventListener('abort', abort, { once: true });
  const ended = await done.finally(() => {
    clearTimeout(timer);
    signal?.removeEventListener('abort', abort);
  });
  if (signal?.aborted) throw new CofferError('E_INTERRUPTED', 'test restore interrupted');
  const serialTail = plainConsoleText(serial).split('\n').slice(-SERIAL_TAIL_LINES).join('\n');
  if (seenAt !== undefined) return { passed: true, secondsToText: (seenAt - started) / 1000, serialTail };
  if (ended.error !== undefined) {
    const why = (ended.error as NodeJS.ErrnoException).code === 'ENOENT' ? `${qemu} is not installed` : ended.error.message;
    return { passed: false, reason: `QEMU could not be started: ${why}`, serialTail };
  }
  const reason = timedOut
    ? `${JSON.stringify(expect)} did not appear on the serial console within ${Math.round(timeoutMs / 1000)} s`
    : `QEMU exited (code ${ended.code}) before ${JSON.stringify(expect)} appeared${stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' / ')}` : ''}`;
  return { passed: false, reason, serialTail };
}

async function canOpen(file: string): Promise<boolean> {
  return fsp.access(file, fsConstants.R_OK | fsConstants.W_OK).then(() => true, () => false);
}
