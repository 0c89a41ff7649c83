/**
 * Coffer's own CLI (`node bin/coffer.js`) as a {@link BackupTool}, treated as a black box
 * exactly like the peers: same inputs, same measurement. `backup --json` prints one JSON
 * object (`id, bytesLogical, bytesRead, bytesNew, bytesStored, durationMs`), kept as the
 * tool's own accounting.
 *
 * @module
 */
import path from 'node:path';
import { run, timed, type Measurement } from './exec.js';
import type { BackupOutcome, BackupTool, ToolContext } from './tools.js';

/** Drives `node bin/coffer.js`. */
export class CofferTool implements BackupTool {
  readonly name = 'coffer' as const;
  readonly settings = [process.env.BENCH_FORMAT === undefined ? '' : `--format ${process.env.BENCH_FORMAT}`, process.env.BENCH_COFFER_INIT_ARGS ?? ''].join(' ').trim() || 'defaults';
  readonly #ctx: ToolContext;
  readonly #bin: string;
  readonly #env: Record<string, string>;

  constructor(ctx: ToolContext) {
    this.#ctx = ctx;
    this.#bin = ctx.cofferBin;
    this.#env = { COFFER_PASSWORD: ctx.password, XDG_CACHE_HOME: path.join(ctx.home, 'cache') };
  }

  #timed(...args: string[]): ReturnType<typeof timed> {
    return timed(process.execPath, [this.#bin, ...args], { env: this.#env });
  }

  async version(): Promise<string> {
    const out = await run(process.execPath, [this.#bin, '--version'], { allowFail: true });
    return out.code === 0 ? out.stdout.trim() : 'unknown';
  }

  async init(): Promise<Measurement> {
    // BENCH_COFFER_INIT_ARGS (e.g. "--block-size 64K") compares repository settings;
    // BENCH_FORMAT=2 makes a format 2 repository (packs).
    const format = process.env.BENCH_FORMAT === undefined ? [] : ['--format', process.env.BENCH_FORMAT];
    const extra = [...format, ...(process.env.BENCH_COFFER_INIT_ARGS ?? '').split(/\s+/).filter(Boolean)];
    return (await this.#timed('init', '-r', this.#ctx.repo, ...extra)).m;
  }

  async backup(vm: string, disk: string, _tag: string, time?: Date): Promise<BackupOutcome> {
    const when = time === undefined ? [] : ['--time', time.toISOString()];
    const out = await this.#timed('backup', '-r', this.#ctx.repo, '--vm', vm, ...when, '--json', disk);
    return { m: out.m, reported: lastJson(out.stdout) };
  }

  async restore(vm: string, _disk: string, dir: string): Promise<{ m: Measurement; file: string }> {
    const file = path.join(dir, 'disk.raw');
    const out = await this.#timed('restore', '-r', this.#ctx.repo, `${vm}:latest`, '--to', file);
    return { m: out.m, file };
  }

  async verify(): Promise<Measurement> {
    return (await this.#timed('verify', '-r', this.#ctx.repo, '--read-data')).m;
  }

  async forget(vm: string, keepDaily: number): Promise<Measurement> {
    return (await this.#timed('forget', '-r', this.#ctx.repo, '--vm', vm, '--keep-daily', String(keepDaily), '--json')).m;
  }

  /** `prune --json` prints the PruneReport (chunks and index pages removed, bytes freed). */
  async prune(): Promise<{ m: Measurement; reported: Record<string, unknown> }> {
    const out = await this.#timed('prune', '-r', this.#ctx.repo, '--json');
    return { m: out.m, reported: lastJson(out.stdout) };
  }
}

/** The last line of stdout that parses as a JSON object, or {}. */
export function lastJson(stdout: string): Record<string, unknown> {
  for (const line of stdout.trim().split('\n').reverse()) {
    try {
      const v: unknown = JSON.parse(line);
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      // not JSON: keep looking
    }
  }
  return {};
}
