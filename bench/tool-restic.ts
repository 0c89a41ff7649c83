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
    this.#env = { RESTIC_PASSWORD: ctx.password, RESTIC_CACHE_DIR: path.join(ctx.home, 'cache') };
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

  async backup(vm: string, disk: string, tag: string): Promise<BackupOutcome> {
    const out = await timed('restic', this.#args('backup', '--force', '--json', '--host', vm, '--tag', tag, disk), {
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
