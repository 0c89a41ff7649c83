import os from 'node:os';
import { CofferError, isCofferError } from '../../errors/index.js';
import type { Repository, Snapshot } from '../../repo/index.js';
import { SnapshotFiles } from '../files/snapshot-files.js';
import { FILE_TREE_VOLUME, openSnapshotFilesystems } from '../files/snapshot-filesystems.js';
import { SnapshotDisk } from '../snapshot-disk.js';
import { bootCheck, type BootCheckOptions } from './boot-check.js';
import { checkerCommand, runFilesystemChecker } from './fs-checkers.js';
import { readWholeDisk } from './read-disks.js';
import { nameUnreadableFiles } from './unreadable-files.js';
import type { TestRestoreReport, VolumeCheck } from './report.js';
import { walkAndReadEverything } from './walk-volume.js';

/** Options of {@link testRestore}. */
export interface TestRestoreOptions {
  /** Run each filesystem's own checker on a temporary copy of its volume (default true). */
  fsck?: boolean;
  /** Where those temporary copies go (default: the system's temporary folder). */
  workDir?: string;
  /** Blocks read at a time when reading the disks back (default 16). */
  inFlight?: number;
  signal?: AbortSignal;
  onPhase?: (phase: string) => void;
  clock?: () => Date;
  /** Also boot the VM from the backup, isolated, and wait for a text on its serial console. */
  boot?: BootCheckOptions;
}

/**
 * Proves a snapshot restores, without writing a restored copy of it: every disk is read back
 * in full through the repository (each chunk authenticated and checked against its id),
 * every partition table and LVM volume group is read, every filesystem Coffer reads is walked
 * from its root with every file, symlink and alternate stream read, and, where the system
 * has it, the filesystem's own checker runs read-only on a temporary copy of the volume;
 * optionally the VM is booted from the backup (see boot-check.ts). A file snapshot (`backup
 * --files`, an agent's) has no disk: its tree is walked and every file, symlink and special
 * entry read back the same way, as the one volume `files` (no checker: nothing to run one on).
 * Damage is reported, never thrown: the report says whether the snapshot passed and why not.
 * Only an interruption or a failure of the repository itself (not of one chunk) throws.
 */
export async function testRestore(repo: Repository, snapshot: Snapshot, options: TestRestoreOptions = {}): Promise<TestRestoreReport> {
  const clock = options.clock ?? (() => new Date());
  const started = clock();
  const signalOption = options.signal ? { signal: options.signal } : {};
  const report: TestRestoreReport = {
    snapshot: snapshot.id,
    vm: snapshot.vm,
    startedAt: started.toISOString(),
    durationMs: 0,
    passed: false,
    failures: [],
    disks: [],
    volumes: [],
    warnings: [],
  };
  if (snapshot.files !== undefined) {
    if (options.boot !== undefined) throw new CofferError('E_USAGE', `snapshot ${snapshot.id.slice(0, 8)} holds files, not a VM's disks: there is nothing to boot`, { subject: { snapshot: snapshot.id } });
    await walkFileSnapshot(repo, snapshot, report, options);
    report.passed = report.failures.length === 0;
    report.durationMs = clock().getTime() - started.getTime();
    return report;
  }
  for (const record of snapshot.disks) {
    options.onPhase?.(`reading disk ${record.name}`);
    const disk = new SnapshotDisk(repo, snapshot.id, record);
    try {
      const check = await readWholeDisk(disk, { inFlight: options.inFlight ?? 16, ...signalOption });
      report.disks.push(check);
      const bad = check.unreadable.filter((u) => u.offset >= 0);
      if (bad.length > 0) report.failures.push(`disk ${check.name}: ${bad.length} unreadable block(s), the first at byte ${bad[0]?.offset}: ${bad[0]?.error}`);
    } finally {
      await disk.close();
    }
  }
  const files = await SnapshotFiles.open(repo, snapshot).catch((error: unknown) => {
    if (!isCofferError(error) || error.code === 'E_INTERRUPTED') throw error;
    report.failures.push(`the volumes cannot be listed: ${error.message}`);
    return undefined;
  });
  try {
    if (files !== undefined) for (const check of report.disks) await nameUnreadableFiles(files, check, options.signal);
    for (const v of files === undefined ? [] : await files.list()) {
      if (options.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'test restore interrupted');
      for (const warning of v.volume.warnings ?? []) report.warnings.push(`${v.diskName} ${v.volume.name}: ${warning}`);
      if (v.volume.lvmPhysicalVolume !== undefined) continue; // its logical volumes are checked on their own
      const check: VolumeCheck = { disk: v.diskName, name: v.volume.name, directories: 0, files: 0, symlinks: 0, bytesRead: 0, problems: [], problemCount: 0 };
      report.volumes.push(check);
      if (v.problem !== undefined) {
        if (v.problem.code === 'E_VOLUME_ENCRYPTED' || v.problem.code === 'E_FS_UNSUPPORTED') {
          check.notChecked = v.problem.message;
        } else {
          check.problems.push(v.problem.message);
          check.problemCount = 1;
          report.failures.push(`${v.diskName} ${v.volume.name}: ${v.problem.message}`);
        }
        continue;
      }
      const fs = v.filesystem;
      if (fs === undefined) {
        check.notChecked = `no filesystem Coffer reads${v.volume.typeDescription ? ` (partition type: ${v.volume.typeDescription})` : ''}`;
        continue;
      }
      check.filesystem = fs.type;
      if (fs.label !== '') check.label = fs.label;
      options.onPhase?.(`reading every file of ${v.diskName} ${v.volume.name} (${fs.type})`);
      Object.assign(check, await walkAndReadEverything(fs, options.signal));
      if (check.problemCount > 0) {
        report.failures.push(`${v.diskName} ${v.volume.name} (${fs.type}): ${check.problemCount} damaged file(s) or folder(s), the first: ${check.problems[0]}`);
      }
      if (options.fsck === false) {
        const command = checkerCommand(fs.type);
        if (command !== undefined) check.checker = { command, exitCode: null, passed: true, skipped: 'not asked for (--no-fsck)' };
        continue;
      }
      options.onPhase?.(`checking ${v.diskName} ${v.volume.name} with ${checkerCommand(fs.type) ?? 'no checker'}`);
      const checker = await runFilesystemChecker(fs.type, v.volume.device, { workDir: options.workDir ?? os.tmpdir(), ...signalOption });
      if (checker !== undefined) {
        check.checker = checker;
        if (!checker.passed) report.failures.push(`${v.diskName} ${v.volume.name} (${fs.type}): ${checker.command} exited with ${checker.exitCode}`);
      }
    }
  } finally {
    await files?.close();
  }
  if (options.boot !== undefined) {
    options.onPhase?.(`booting the VM from the backup, waiting for ${JSON.stringify(options.boot.expect ?? 'login:')} on its serial console`);
    report.boot = await bootCheck(repo, snapshot, { ...options.boot, ...signalOption });
    if (!report.boot.passed) report.failures.push(`boot: ${report.boot.reason ?? 'failed'}`);
  }
  report.passed = report.failures.length === 0;
  report.durationMs = clock().getTime() - started.getTime();
  return report;
}

/** A file snapshot's tree walked and read back whole, as the volume {@link FILE_TREE_VOLUME}. */
async function walkFileSnapshot(repo: Repository, snapshot: Snapshot, report: TestRestoreReport, options: TestRestoreOptions): Promise<void> {
  const tree = await openSnapshotFilesystems(repo, snapshot);
  try {
    const fs = await tree.filesystem(FILE_TREE_VOLUME);
    const check: VolumeCheck = { disk: '', name: FILE_TREE_VOLUME, filesystem: fs.type, directories: 0, files: 0, symlinks: 0, bytesRead: 0, problems: [], problemCount: 0 };
    report.volumes.push(check);
    options.onPhase?.(`reading every file of the snapshot (${snapshot.files?.paths.join(', ') ?? ''})`);
    Object.assign(check, await walkAndReadEverything(fs, options.signal));
    if (check.problemCount > 0) report.failures.push(`${FILE_TREE_VOLUME}: ${check.problemCount} damaged file(s) or folder(s), the first: ${check.problems[0]}`);
  } finally {
    await tree.close();
  }
}
