import { addSnapshotNote, resolveSnapshot, TEST_RESTORE_NOTE } from '../../repo/index.js';
import { CofferError } from '../../errors/index.js';
import { BOOT_BUSES, BOOT_FIRMWARES, testRestore, type BootBus, type BootCheckOptions, type BootFirmwareChoice, type TestRestoreReport } from '../../restore/index.js';
import { withRepository, type CommandContext, type RepositoryOptions } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import { formatBytes } from '../format.js';

export interface TestRestoreCommandOptions extends RepositoryOptions {
  fsck?: boolean;
  workDir?: string;
  boot?: boolean;
  bootExpect?: string;
  bootTimeout?: string;
  bootBus?: string;
  bootMemory?: string;
  bootMachine?: string;
  bootFirmware?: string;
  accel?: string;
}

/**
 * `coffer test-restore SNAPSHOT [--no-fsck] [--work-dir DIR]`: proves a snapshot restores
 * without writing a restored copy (see restore/test-restore). The report is printed and
 * stored with the snapshot as a note; exit 0 when it passed, 15 when it did not.
 */
export async function testRestoreCommand(reference: string, options: TestRestoreCommandOptions, context: CommandContext): Promise<number> {
  const boot = options.boot === true ? bootOptions(options) : undefined;
  return withRepository(options, context, async (repo) => {
    const snapshot = await resolveSnapshot(repo, reference);
    const report = await testRestore(repo, snapshot, {
      ...(boot !== undefined ? { boot } : {}),
      fsck: options.fsck !== false,
      ...(options.workDir !== undefined ? { workDir: options.workDir } : {}),
      signal: context.signal,
      onPhase: (phase) => {
        if (options.json) context.stderr.write(`${JSON.stringify({ phase })}\n`);
        else context.stderr.write(`${phase}…\n`);
      },
    });
    await addSnapshotNote(repo, snapshot.id, TEST_RESTORE_NOTE, report);
    if (options.json) context.stdout.write(`${JSON.stringify(report)}\n`);
    else context.stdout.write(renderReport(report));
    return report.passed ? ExitCode.ok : ExitCode.testRestoreFailed;
  });
}

function bootOptions(options: TestRestoreCommandOptions): BootCheckOptions {
  const seconds = options.bootTimeout === undefined ? 300 : Number(options.bootTimeout);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new CofferError('E_USAGE', `--boot-timeout ${options.bootTimeout}: give a number of seconds`);
  const memory = options.bootMemory === undefined ? undefined : Number(options.bootMemory);
  if (memory !== undefined && (!Number.isInteger(memory) || memory < 16)) throw new CofferError('E_USAGE', `--boot-memory ${options.bootMemory}: give MiB, at least 16`);
  const bus = options.bootBus;
  if (bus !== undefined && !(BOOT_BUSES as readonly string[]).includes(bus)) throw new CofferError('E_USAGE', `--boot-bus ${bus}: choose one of ${BOOT_BUSES.join(', ')}`);
  const machine = options.bootMachine;
  if (machine !== undefined && !/^[A-Za-z0-9._-]+$/.test(machine)) throw new CofferError('E_USAGE', `--boot-machine ${machine}: a QEMU machine type, e.g. q35 or pc-i440fx-7.2`);
  const firmware = options.bootFirmware;
  if (firmware !== undefined && !(BOOT_FIRMWARES as readonly string[]).includes(firmware)) throw new CofferError('E_USAGE', `--boot-firmware ${firmware}: choose one of ${BOOT_FIRMWARES.join(', ')}`);
  const accel = options.accel ?? 'auto';
  if (!['auto', 'kvm', 'tcg'].includes(accel)) throw new CofferError('E_USAGE', `--accel ${accel}: choose auto, kvm or tcg`);
  if (options.bootExpect === '') throw new CofferError('E_USAGE', '--boot-expect cannot be empty');
  // Bus, memory and machine default to the VM's own, from its stored definition (boot-hints.ts).
  return {
    ...(options.bootExpect !== undefined ? { expect: options.bootExpect } : {}),
    timeoutMs: seconds * 1000,
    ...(bus !== undefined ? { bus: bus as BootBus } : {}),
    ...(memory !== undefined ? { memoryMiB: memory } : {}),
    ...(machine !== undefined ? { machine } : {}),
    ...(firmware !== undefined ? { firmware: firmware as BootFirmwareChoice } : {}),
    accel: accel as 'auto' | 'kvm' | 'tcg',
    ...(options.workDir !== undefined ? { workDir: options.workDir } : {}),
  };
}

/** `UEFI (Secure Boot, the VM's variable store; the VM's definition)`, `BIOS (…)`. */
function firmwareText(f: NonNullable<NonNullable<TestRestoreReport['boot']>['firmware']>): string {
  const details = f.kind === 'uefi' ? [...(f.secureBoot === true ? ['Secure Boot'] : []), ...(f.varsFromBackup === true ? ['the VM\'s variable store'] : [])] : [];
  return `${f.kind.toUpperCase()} (${[...details, f.why].join('; ')})`;
}

/** The report as text for a terminal. */
export function renderReport(report: TestRestoreReport): string {
  const lines = [`test restore of snapshot ${report.snapshot.slice(0, 8)} (vm ${report.vm})`];
  for (const disk of report.disks) {
    const bad = disk.unreadable.filter((u) => u.offset >= 0);
    lines.push(`disk ${disk.name}: ${formatBytes(disk.size)}, ${formatBytes(disk.bytesRead)} read back, ${bad.length === 0 ? 'every block readable' : `${bad.length} unreadable block(s)`}`);
    for (const u of disk.unreadable) {
      lines.push(u.offset < 0 ? `  ${u.error}` : `  UNREADABLE bytes ${u.offset}-${u.offset + u.length - 1}: ${u.error}`);
      for (const f of u.files ?? []) lines.push(`    FILE ${f.volume}: ${f.path}${f.metadata !== undefined ? ` (its ${f.metadata.join(', ')})` : ''}`);
    }
    for (const line of disk.filesUnknown ?? []) lines.push(`  ${line}`);
  }
  for (const v of report.volumes) {
    const name = v.disk === '' ? v.name : `${v.disk} ${v.name}`; // a file snapshot's tree lies on no disk
    if (v.notChecked !== undefined) {
      lines.push(`${name}: not checked: ${v.notChecked}`);
      continue;
    }
    if (v.filesystem === undefined) {
      lines.push(`${name}: ${v.problems[0] ?? 'unreadable'}`);
      continue;
    }
    const label = v.label ? ` "${v.label}"` : '';
    lines.push(`${name} ${v.filesystem}${label}: ${v.directories} folders, ${v.files} files, ${v.symlinks} symlinks, ${formatBytes(v.bytesRead)} of file data read${v.problemCount === 0 ? '' : `, ${v.problemCount} damaged`}`);
    for (const problem of v.problems) lines.push(`  DAMAGED ${problem}`);
    if (v.problemCount > v.problems.length) lines.push(`  … and ${v.problemCount - v.problems.length} more`);
    const c = v.checker;
    if (c !== undefined) {
      if (c.skipped !== undefined) lines.push(`  ${c.command}: skipped (${c.skipped})`);
      else lines.push(`  ${c.command}: ${c.passed ? 'clean' : `FAILED (exit ${c.exitCode})`}`);
      if (c.skipped === undefined && !c.passed && c.output) for (const line of c.output.split('\n').slice(-12)) lines.push(`    | ${line}`);
    }
  }
  if (report.boot !== undefined) {
    const b = report.boot;
    const how = [b.machine, b.accel, b.bus, ...(b.firmware !== undefined ? [firmwareText(b.firmware)] : [])].join(', ');
    lines.push(b.passed
      ? `boot (${how}): ${JSON.stringify(b.expect)} appeared on the serial console after ${b.secondsToText?.toFixed(1)} s`
      : `boot (${how}): FAILED: ${b.reason}`);
    if (!b.passed) for (const line of b.serialTail.split('\n').slice(-12)) lines.push(`    | ${line}`);
  }
  for (const warning of report.warnings) lines.push(`warning: ${warning}`);
  const seconds = (report.durationMs / 1000).toFixed(1);
  if (report.passed) lines.push(`PASSED in ${seconds} s`);
  else {
    lines.push(`FAILED in ${seconds} s:`);
    for (const failure of report.failures) lines.push(`  ${failure}`);
  }
  return `${lines.join('\n')}\n`;
}
