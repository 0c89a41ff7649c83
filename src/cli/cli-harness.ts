/**
 * Helpers for the black-box tests of the `coffer` binary (`*.integ.test.ts` beside this
 * file): run `bin/coffer.js` in a child process with a controlled environment, collect its
 * output and exit status, and never hang (a run past its timeout is killed and fails the
 * test). Never imported by the product; it talks to Coffer only through the command line
 * and the repository's files.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { open, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TESTONLY_WEAKEN_KDF } from '../repo/index.js';

/** The project root, computed from this compiled file: dist/src/cli/ → three levels up. */
export const PROJECT_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The `coffer` binary, run with this Node. */
export const COFFER_BIN = join(PROJECT_ROOT, 'bin', 'coffer.js');

const MiB = 1024 * 1024;

/** How a `coffer` run ended and what it printed. */
export interface CofferResult {
  args: string[];
  /** null when ended by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/** Options of {@link coffer} and {@link startCoffer}. */
export interface RunOptions {
  /** Added to the environment (which keeps PATH etc. but no inherited COFFER_* variable but COFFER_TESTONLY_WEAKEN_KDF). */
  env?: Record<string, string | undefined>;
  /** Kill the run and fail after this long. Default 60 s. */
  timeoutMs?: number;
  /** Run as this user and group (the tests run as root; e.g. nobody's 65534 to test what an unprivileged user gets), with no supplementary groups. */
  as?: { uid: number; gid: number };
  /** Run as on another host, whose accounts are these files (root only: {@link onHostWith}). */
  accounts?: HostAccounts;
}

/** Account files standing for another host's /etc/passwd and /etc/group. */
export interface HostAccounts {
  passwd: string;
  group: string;
}

/**
 * `command args…` as run on a host whose accounts are `accounts`: in a private mount
 * namespace (unshare, root only) where they are bind-mounted over /etc/passwd and
 * /etc/group, so a restore maps owners' names as it would there. Nothing outside the
 * namespace sees the mounts; they go with its last process.
 */
export function onHostWith(accounts: HostAccounts, command: string, args: string[]): [string, string[]] {
  const script = 'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && exec "$@"';
  return ['unshare', ['--mount', '--propagation', 'private', '/bin/sh', '-c', script, 'sh', accounts.passwd, accounts.group, command, ...args]];
}

/** A `coffer` run in progress: signal it through `child`, await `done` for the result. */
export interface RunningCoffer {
  child: ChildProcess;
  done: Promise<CofferResult>;
}

/**
 * Starts `coffer args…`. `done` resolves when the process exits (whatever the code) and
 * rejects if it is still running after the timeout (it is then killed with SIGKILL).
 */
export function startCoffer(args: string[], options: RunOptions = {}): RunningCoffer {
  const [command, commandArgs] = options.accounts !== undefined ? onHostWith(options.accounts, process.execPath, [COFFER_BIN, ...args]) : [process.execPath, [COFFER_BIN, ...args]];
  return watchRun(args, spawn(command, commandArgs, { env: runEnvironment(options), stdio: ['ignore', 'pipe', 'pipe'], ...options.as }), options);
}

/**
 * Runs `coffer args…` where a Buffer argument reaches the process as its exact bytes, as a
 * shell passes a name that is not UTF-8 (Node's spawn takes strings only, and would send
 * U+FFFD): through `/bin/sh`, each Buffer written with printf's octal escapes.
 */
export function cofferWithBytes(args: (string | Buffer)[], options: RunOptions = {}): Promise<CofferResult> {
  const quote = (text: string): string => `'${text.replaceAll("'", "'\\''")}'`;
  const words = args.map((arg) => (typeof arg === 'string' ? quote(arg) : `"$(printf '${[...arg].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('')}')"`));
  const script = `exec ${quote(process.execPath)} ${quote(COFFER_BIN)} ${words.join(' ')}`;
  const shown = args.map((arg) => (typeof arg === 'string' ? arg : `<${arg.toString('hex')}>`));
  return watchRun(shown, spawn('/bin/sh', ['-c', script], { env: runEnvironment(options), stdio: ['ignore', 'pipe', 'pipe'], ...options.as }), options).done;
}

/** The environment of a run: PATH etc., no inherited COFFER_* variable but COFFER_TESTONLY_WEAKEN_KDF, then `options.env`. */
function runEnvironment(options: RunOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('COFFER_') || name === TESTONLY_WEAKEN_KDF) env[name] = value;
  for (const [name, value] of Object.entries(options.env ?? {})) if (value !== undefined) env[name] = value;
  return env;
}

/** Collects a started run's output; `done` rejects after the timeout (the child then killed). */
function watchRun(args: string[], child: ChildProcess, options: RunOptions): RunningCoffer {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
  const timeoutMs = options.timeoutMs ?? 60_000;
  const done = new Promise<CofferResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`coffer ${args.join(' ')} still running after ${timeoutMs} ms; killed. stderr so far:\n${Buffer.concat(stderr).toString('utf8').slice(-2000)}`));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ args, code, signal, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString('utf8') });
    });
  });
  return { child, done };
}

/**
 * Starts a long-running `coffer` command (`coffer serve …`) and resolves once it has printed
 * `marker` on stdout (serve prints its `nbd…` URIs when it listens); rejects if it ends first.
 */
export async function startCofferUntil(args: string[], marker: string, options: RunOptions = {}): Promise<RunningCoffer> {
  const running = startCoffer(args, options);
  await new Promise<void>((resolve, reject) => {
    let out = '';
    running.child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(marker)) resolve();
    });
    void running.done.then((r) => reject(new Error(`coffer ${args[0] ?? ''} ended early: ${r.code} ${r.stderr}`)), reject);
  });
  return running;
}

/** Runs `coffer args…` to its end. */
export function coffer(args: string[], options: RunOptions = {}): Promise<CofferResult> {
  return startCoffer(args, options).done;
}

/** A one-line summary of a run for assertion messages. */
export function describeRun(result: CofferResult): string {
  const stdout = result.stdout.length > 2000 ? `${result.stdout.length} bytes` : result.stdout.toString('utf8');
  return `coffer ${result.args.join(' ')} → code ${result.code} signal ${result.signal}\nstdout: ${stdout}\nstderr: ${result.stderr.slice(-3000)}`;
}

/** Asserts the run exited with `code`. */
export function assertExit(result: CofferResult, code: number): void {
  assert.equal(result.code, code, describeRun(result));
}

/** Runs `coffer args… --json`, asserts exit 0, and parses the one JSON document on stdout. */
export async function cofferJson<T>(args: string[], options: RunOptions = {}): Promise<T> {
  const result = await coffer([...args, '--json'], options);
  assertExit(result, 0);
  return JSON.parse(result.stdout.toString('utf8')) as T;
}

/**
 * Asserts that stderr is one error line (`coffer: …`, or with --json one JSON error object)
 * and holds no stack trace, and returns the line.
 */
export function assertOneLineError(result: CofferResult): string {
  assert.doesNotMatch(result.stderr, /^\s+at /m, `stack trace on stderr:\n${describeRun(result)}`);
  const lines = result.stderr.split('\n').filter((line) => line !== '' && !line.startsWith('{"type":"progress"'));
  assert.equal(lines.length, 1, `expected one error line:\n${describeRun(result)}`);
  return lines[0] as string;
}

/** A fresh directory under the system's temporary directory; remove it with {@link removeDir}. */
export function makeWorkDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `coffer-cli-${prefix}-`));
}

/** Removes a work directory; undefined (a `before` that failed before making it) is nothing to remove. */
export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir === undefined) return;
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** The ids (64 hex) of the chunk files of a local repository, sorted. */
export async function chunkIds(repo: string): Promise<string[]> {
  const ids: string[] = [];
  const fans = await readdir(join(repo, 'chunks')).catch(() => [] as string[]);
  for (const fan of fans) {
    for (const name of await readdir(join(repo, 'chunks', fan)).catch(() => [] as string[])) {
      if (/^[0-9a-f]{64}$/.test(name)) ids.push(name);
    }
  }
  return ids.sort();
}

/** The path of a chunk file in a local repository. */
export function chunkPath(repo: string, id: string): string {
  return join(repo, 'chunks', id.slice(0, 2), id);
}

/** Polls `condition` every `intervalMs` until it holds; false if `timeoutMs` passed first or `stop()` became true. */
export async function waitFor(
  condition: () => Promise<boolean>,
  options: { timeoutMs: number; intervalMs?: number; stop?: () => boolean },
): Promise<boolean> {
  const deadline = Date.now() + options.timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    if (options.stop?.()) return false;
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 10));
  }
  return false;
}

/**
 * Asserts two files (or a file and a buffer) hold the same bytes, naming the first MiB that
 * differs. Reads 1 MiB at a time, so multi-GiB sparse files are fine (if slow).
 */
export async function assertSameBytes(actual: string | Buffer, expected: string, what = 'restored disk'): Promise<void> {
  const b = await open(expected, 'r');
  const a = typeof actual === 'string' ? await open(actual, 'r') : undefined;
  try {
    const sizeB = (await b.stat()).size;
    const sizeA = a !== undefined ? (await a.stat()).size : (actual as Buffer).length;
    assert.equal(sizeA, sizeB, `${what}: size ${sizeA}, expected ${sizeB} (${expected})`);
    const bufA = Buffer.alloc(MiB);
    const bufB = Buffer.alloc(MiB);
    for (let at = 0; at < sizeB; at += MiB) {
      const length = Math.min(MiB, sizeB - at);
      const { bytesRead } = await b.read(bufB, 0, length, at);
      assert.equal(bytesRead, length);
      let sliceA: Buffer;
      if (a !== undefined) {
        const got = await a.read(bufA, 0, length, at);
        assert.equal(got.bytesRead, length);
        sliceA = bufA.subarray(0, length);
      } else {
        sliceA = (actual as Buffer).subarray(at, at + length);
      }
      if (!sliceA.equals(bufB.subarray(0, length))) {
        let i = 0;
        while (sliceA[i] === bufB[i]) i++;
        assert.fail(`${what} differs from ${expected} at byte ${at + i}`);
      }
    }
  } finally {
    await b.close();
    await a?.close();
  }
}

/** Runs an independent tool (qemu-img, e2fsck, cmp …; /usr/sbin and /sbin added to PATH). */
export function runTool(tool: string, args: string[], timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, PATH: `${process.env['PATH'] ?? ''}:/usr/sbin:/sbin`, LC_ALL: 'C' };
    const child = spawn(tool, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${tool} ${args.join(' ')} still running after ${timeoutMs} ms; killed`));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

// --- the JSON documents of the CLI contract ------------------------------------------

/** `coffer backup --json`. */
export interface BackupJson {
  id: string;
  vm: string;
  time: string;
  parent: string | null;
  bytesLogical: number;
  bytesRead: number;
  /** Of the bytes read, those whose blocks matched their fingerprints (not hashed). */
  bytesMatched: number;
  bytesNew: number;
  bytesStored: number;
  durationMs: number;
}

/** One element of `coffer snapshots --json`. */
export interface SnapshotJson {
  id: string;
  shortId: string;
  vm: string;
  time: string;
  hostname: string;
  tags: string[];
  parent: string | null;
  disks: { name: string; size: number; sourceFormat: string; source: string; blockSize: number }[];
  stats: { bytesLogical: number; bytesRead: number; bytesNew: number; bytesStored: number; durationMs: number };
  protected: boolean;
  protection: { time: string | null; reason: string | null; damaged: boolean } | null;
}

/** `coffer forget --keep-* --json`. */
export interface ForgetPolicyJson {
  dryRun: boolean;
  policy: Record<string, unknown>;
  vms: { vm: string; snapshots: { id: string; shortId: string; time: string; tags: string[]; protected: boolean; keep: boolean; reasons: string[] }[] }[];
  kept: number;
  removed: { id: string; vm: string; time: string }[];
}

/** `coffer verify --json`. */
export interface VerifyJson {
  ok: boolean;
  snapshots: number;
  chunksReferenced: number;
  chunksRead: number;
  bytesRead: number;
  damaged: { kind: string; id: string; problem: string; message: string }[];
  affected: { snapshot: string; vm: string; time: string; disk: string; ranges: { start: number; end: number }[] }[];
  quarantined: number;
}

/** `coffer stats --json`. */
export interface StatsJson {
  snapshots: number;
  vms: number;
  bytesLogical: number;
  bytesData: number;
  bytesUnique: number;
  bytesStored: number;
  bytesStoredChunks: number;
  chunks: number;
  indexPages: number;
  dedupRatio: number;
  compressionRatio: number;
  totalRatio: number;
}
