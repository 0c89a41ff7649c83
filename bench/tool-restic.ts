/**
 * restic (Debian's package) as a {@link BackupTool}. Repository format 2 with restic's
 * default compression (`auto`, zstd at its default level); `--force` makes every backup
 * read the whole image instead of trusting mtime and size. Snapshots of a VM are told
 * apart by `--host`. restic 0.14 restores without holes (no `--sparse` before 0.15).
 *
 * @module
 */
import path from 'node:path';
import { run, timed, type Measurement } from './exec.js';
import type { BackupOutcome, BackupTool, ToolContext } from './tools.js';

/** Drives the `restic` command. */
export class ResticTool implements BackupTool {
  readonly name = 'restic' as const;
  readonly settings = 'repository v2, --compression auto (default), backup --force';
  readonly #ctx: ToolContext;
  readonly #env: Record<string, string>;

  constructor(ctx: ToolContext) {
    this.#ctx = ctx;
    // TZ: `backup --time` is read in local time; UTC makes it the instant the others record.
    this.#env = { RESTIC_PASSWORD: ctx.password, RESTIC_CACHE_DIR: path.join(ctx.home, 'cache'), TZ: 'UTC' };
  }

  #args(...rest: string[]): string[] {
    return ['-r', this.#ctx.repo, ...rest];
  }

  async version(): Promise<string> {
    return (await run('restic', ['version'])).stdout.trim();
  }

  async init(): Promise<Measurement> {
    return (await timed('restic', this.#args('init', '--repository-version', '2'), { env: this.#env })).m;
  }

  async backup(vm: string, disk: string, tag: string, time?: Date): Promise<BackupOutcome> {
    const when = time === undefined ? [] : ['--time', time.toISOString().slice(0, 19).replace('T', ' ')];
    const out = await timed('restic', this.#args('backup', '--force', '--json', '--host', vm, '--tag', tag, ...when, disk), {
      env: this.#env,
    });
    return { m: out.m, reported: summaryLine(out.stdout) };
  }

  async restore(vm: string, disk: string, dir: string): Promise<{ m: Measurement; file: string }> {
    const out = await timed('restic', this.#args('restore', 'latest', '--host', vm, '--target', dir), {
      env: this.#env,
    });
    return { m: out.m, file: path.join(dir, disk) };
  }

  async verify(): Promise<Measurement> {
    return (await timed('restic', this.#args('check', '--read-data'), { env: this.#env })).m;
  }

  async forget(vm: string, keepDaily: number): Promise<Measurement> {
    return (await timed('restic', this.#args('forget', '--host', vm, '--keep-daily', String(keepDaily)), { env: this.#env })).m;
  }

  /** `restic prune` with its defaults (repacks packs more than 5% unused). */
  async prune(): Promise<{ m: Measurement; reported: Record<string, unknown> }> {
    const out = await timed('restic', this.#args('prune'), { env: this.#env });
    return { m: out.m, reported: pruneSummary(out.stdout) };
  }
}

/**
 * restic 0.14 `prune` prints no JSON; its plan lines are kept as they are, e.g.
 * `this removes:        1234 blobs / 567.890 MiB` and `total prune:  ... blobs / ... MiB`.
 */
function pruneSummary(stdout: string): Record<string, unknown> {
  const keep = /^(to delete|to repack|this removes|total prune|remaining|unused size after prune):/;
  const lines = stdout.split('\n').map((l) => l.trim()).filter((l) => keep.test(l));
  return { plan: lines };
}

/** The `summary` message of `restic backup --json`, trimmed to the byte counts. */
function summaryLine(stdout: string): Record<string, unknown> {
  for (const line of stdout.trim().split('\n').reverse()) {
    try {
      const msg = JSON.parse(line) as Record<string, unknown>;
      if (msg.message_type === 'summary') {
        return { dataAdded: msg.data_added, bytesProcessed: msg.total_bytes_processed, snapshot: msg.snapshot_id };
      }
    } catch {
      // a status line cut short, or not JSON: keep looking
    }
  }
  return {};
}
