/**
 * The backup tools under comparison, behind one narrow interface the run loop drives:
 * init a repository, back up a disk image under a VM name, restore a VM's newest backup,
 * verify every byte of the repository. Each adapter runs its tool as a child process
 * measured by GNU time, with its caches and configuration inside the run directory.
 *
 * @module
 */
import { access } from 'node:fs/promises';
import type { ToolName } from './config.js';
import { run, type Measurement } from './exec.js';
import { BorgTool } from './tool-borg.js';
import { CofferTool } from './tool-coffer.js';
import { ResticTool } from './tool-restic.js';

/** Where a tool keeps things, and the secret for its repository. */
export interface ToolContext {
  /** Repository directory (must not exist before `init`). */
  readonly repo: string;
  /** Private directory for caches, configuration and keys. */
  readonly home: string;
  readonly password: string;
  /** The Coffer CLI script (used by the Coffer adapter only). */
  readonly cofferBin: string;
}

/** One backup's measurement and what the tool said about it (its own accounting). */
export interface BackupOutcome {
  readonly m: Measurement;
  readonly reported: Record<string, unknown>;
}

/**
 * A backup tool as the benchmark sees it. Methods run one at a time; each throws (with
 * the tool's stderr) when the tool exits non-zero.
 */
export interface BackupTool {
  readonly name: ToolName;
  /** The options that matter for the comparison, for the report. */
  readonly settings: string;
  /** The tool's version line. */
  version(): Promise<string>;
  /** Creates the repository at `ctx.repo`. */
  init(): Promise<Measurement>;
  /**
   * Backs up the disk image at `disk` as VM `vm`; always reads the whole image (no
   * change tracking, no skipping by mtime). `tag` names this backup (e.g. `full`);
   * `time`, when given, is recorded as the backup's time instead of now (the prune part
   * backs up thirty days in a few minutes).
   */
  backup(vm: string, disk: string, tag: string, time?: Date): Promise<BackupOutcome>;
  /**
   * Restores the newest backup of `vm` into the empty directory `dir`.
   * @returns the measurement and the path of the restored image
   */
  restore(vm: string, disk: string, dir: string): Promise<{ m: Measurement; file: string }>;
  /** Reads and checks every byte stored in the repository. */
  verify(): Promise<Measurement>;
  /**
   * Removes the backups of `vm` a "keep the newest backup of each of the last `keepDaily`
   * days" policy does not keep (by recorded time). Space is not freed yet: see prune.
   */
  forget(vm: string, keepDaily: number): Promise<Measurement>;
  /** Frees the space of data no remaining backup uses. */
  prune(): Promise<{ m: Measurement; reported: Record<string, unknown> }>;
}

/** Makes the adapter for a tool. */
export function createTool(name: ToolName, ctx: ToolContext): BackupTool {
  switch (name) {
    case 'coffer':
      return new CofferTool(ctx);
    case 'restic':
      return new ResticTool(ctx);
    case 'borg':
      return new BorgTool(ctx);
  }
}

/**
 * Says why a tool cannot run here, or returns undefined when it can.
 * restic and borg come from Debian (`apt-get install restic borgbackup`); Coffer is
 * `bin/coffer.js` of this project (or `COFFER_BIN`).
 */
export async function unavailable(name: ToolName, cofferBin: string): Promise<string | undefined> {
  if (name === 'coffer') {
    const bin = cofferBin;
    return access(bin).then(
      () => undefined,
      () => `${bin} does not exist yet`,
    );
  }
  const [cmd, arg, pkg] = name === 'restic' ? ['restic', 'version', 'restic'] : ['borg', '--version', 'borgbackup'];
  const out = await run(cmd, [arg], { allowFail: true }).catch(() => undefined);
  return out && out.code === 0 ? undefined : `${cmd} not found: apt-get install ${pkg}`;
}
