/**
 * BorgBackup 1.2 (Debian's package) as a {@link BackupTool}: `repokey` encryption,
 * `--compression zstd,3`, default chunker, and `--files-cache=disabled` so every backup
 * reads the whole image. Archives are named `VM-TAG`; restore extracts with `--sparse`.
 *
 * @module
 */
import path from 'node:path';
import { run, timed, type Measurement } from './exec.js';
import type { BackupOutcome, BackupTool, ToolContext } from './tools.js';

/** Drives the `borg` command. */
export class BorgTool implements BackupTool {
  readonly name = 'borg' as const;
  readonly settings = 'repokey, --compression zstd,3, --files-cache=disabled, extract --sparse';
  readonly #ctx: ToolContext;
  readonly #env: Record<string, string>;
  /** Newest archive per VM, for restore. */
  readonly #latest = new Map<string, string>();

  constructor(ctx: ToolContext) {
    this.#ctx = ctx;
    this.#env = {
      BORG_PASSPHRASE: ctx.password,
      BORG_BASE_DIR: ctx.home,
      BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
    };
  }

  async version(): Promise<string> {
    return (await run('borg', ['--version'])).stdout.trim();
  }

  async init(): Promise<Measurement> {
    return (await timed('borg', ['init', '-e', 'repokey', this.#ctx.repo], { env: this.#env })).m;
  }

  async backup(vm: string, disk: string, tag: string, time?: Date): Promise<BackupOutcome> {
    const archive = `${vm}-${tag}`;
    // --timestamp is read as UTC.
    const when = time === undefined ? [] : ['--timestamp', time.toISOString().slice(0, 19)];
    const out = await timed(
      'borg',
      ['create', '--json', '--compression', 'zstd,3', '--files-cache=disabled', ...when, `${this.#ctx.repo}::${archive}`, disk],
      { env: this.#env },
    );
    this.#latest.set(vm, archive);
    return { m: out.m, reported: archiveStats(out.stdout) };
  }

  async restore(vm: string, disk: string, dir: string): Promise<{ m: Measurement; file: string }> {
    const archive = this.#latest.get(vm);
    if (archive === undefined) throw new Error(`borg: no archive of ${vm} to restore`);
    const out = await timed('borg', ['extract', '--sparse', `${this.#ctx.repo}::${archive}`], {
      env: this.#env,
      cwd: dir,
    });
    return { m: out.m, file: path.join(dir, disk.replace(/^\/+/, '')) };
  }

  async verify(): Promise<Measurement> {
    return (await timed('borg', ['check', '--verify-data', this.#ctx.repo], { env: this.#env })).m;
  }

  /** borg 1.2 `prune` removes the archives and their chunk references; `compact` frees the space. */
  async forget(vm: string, keepDaily: number): Promise<Measurement> {
    const args = ['prune', '--keep-daily', String(keepDaily), '--glob-archives', `${vm}-*`, this.#ctx.repo];
    return (await timed('borg', args, { env: this.#env })).m;
  }

  /** `compact` with its default threshold (segments more than 10% unused are rewritten). */
  async prune(): Promise<{ m: Measurement; reported: Record<string, unknown> }> {
    const out = await timed('borg', ['compact', '--verbose', this.#ctx.repo], { env: this.#env });
    const freed = /compaction freed about ([\d.]+ \w+)/i.exec(out.stderr)?.[1];
    return { m: out.m, reported: freed === undefined ? {} : { freed } };
  }
}

/** The archive statistics of `borg create --json`. */
function archiveStats(stdout: string): Record<string, unknown> {
  try {
    const doc = JSON.parse(stdout) as { archive?: { stats?: Record<string, unknown> } };
    const s = doc.archive?.stats ?? {};
    return { originalSize: s.original_size, compressedSize: s.compressed_size, deduplicatedSize: s.deduplicated_size };
  } catch {
    return {};
  }
}
