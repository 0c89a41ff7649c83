/**
 * Running external commands: plainly ({@link run}) or measured by GNU time ({@link timed}).
 *
 * `timed` wraps the command in `/usr/bin/time -f '%e %U %S %M' -o FILE`, so wall time,
 * user and system CPU and peak RSS come from the kernel's rusage of the child, not from this
 * process. GNU time reports the largest RSS of the waited-for process tree (the maximum
 * of any one process, not a sum); every tool measured here runs as one process.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** The resources one command used. */
export interface Measurement {
  /** Elapsed wall-clock seconds. */
  readonly wallS: number;
  /** User plus system CPU seconds. */
  readonly cpuS: number;
  /** Peak resident set size in KiB. */
  readonly maxRssKiB: number;
}

/** What a finished command printed. */
export interface Output {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

/** Options shared by {@link run} and {@link timed}. */
export interface RunOptions {
  /** Working directory. */
  cwd?: string;
  /** Extra environment variables, added to this process's environment. */
  env?: Record<string, string>;
  /** Text written to the command's stdin. */
  input?: string;
  /** Return non-zero exits instead of throwing. */
  allowFail?: boolean;
}

/** Keeps the tail of a growing text; enough to explain a failure, never the whole log. */
const MAX_CAPTURE = 1 << 20;

function append(acc: string, chunk: Buffer): string {
  const s = acc + chunk.toString('utf8');
  return s.length > MAX_CAPTURE ? s.slice(s.length - MAX_CAPTURE) : s;
}

/**
 * Runs a command to completion and returns what it printed.
 *
 * @throws Error naming the command, its exit code and its last stderr lines, on a non-zero
 *   exit (unless `allowFail`) or when it cannot be started
 */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<Output> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout = append(stdout, c)));
    child.stderr.on('data', (c: Buffer) => (stderr = append(stderr, c)));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const rc = code ?? 128;
      if (rc !== 0 && !opts.allowFail) {
        const tail = stderr.trim().split('\n').slice(-15).join('\n');
        const how = signal ? `signal ${signal}` : `exit ${rc}`;
        reject(new Error(`${cmd} ${args.join(' ')}: ${how}\n${tail}`));
      } else {
        resolve({ stdout, stderr, code: rc });
      }
    });
    // A child that exits without reading closes its stdin; its exit code tells what happened.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/**
 * Runs a command under GNU time and returns its output with its measurement.
 *
 * @example
 * const { m } = await timed('borg', ['check', repo]);
 * console.log(m.wallS, m.cpuS, m.maxRssKiB);
 * @throws Error as {@link run} does, or when GNU time's report cannot be parsed
 */
export async function timed(
  cmd: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<Output & { m: Measurement }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-time-'));
  const report = path.join(dir, 'time');
  try {
    const out = await run('/usr/bin/time', ['-f', '%e %U %S %M', '-o', report, '--', cmd, ...args], opts);
    const text = (await readFile(report, 'utf8')).trim().split('\n').pop() ?? '';
    const [e, u, s, rss] = text.split(' ').map(Number);
    if (e === undefined || u === undefined || s === undefined || rss === undefined || [e, u, s, rss].some(Number.isNaN)) {
      throw new Error(`cannot parse GNU time output "${text}" for ${cmd}`);
    }
    return { ...out, m: { wallS: e, cpuS: u + s, maxRssKiB: rss } };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
