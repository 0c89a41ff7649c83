import { spawn } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import type { BlockDevice } from '../../blockdev/index.js';
import { copyDevice, openRawTarget } from '../../disk/index.js';
import { CofferError, isCofferError } from '../../errors/index.js';
import type { FsType } from '../../fs/index.js';
import type { CheckerResult } from './report.js';

/** A checker that runs longer than this is killed and the check fails. */
const CHECKER_TIMEOUT_MS = 30 * 60_000;
/** Lines of the checker's output kept in the report. */
const OUTPUT_LINES = 40;

/**
 * A filesystem's own checker in a mode that changes nothing, and how to read its exit code.
 * - e2fsck `-fn`: 0 clean, 4 errors left uncorrected (with -n every error is), 8 and up an
 *   operational error. A journal that needs replaying is replayed first on the temporary
 *   copy (`-E journal_only`), as a mount would: without it every crash-consistent snapshot
 *   of a mounted ext3/4 would look damaged.
 * - fsck.fat `-n`: 0 clean, 1 errors found, 2 usage or I/O.
 * - ntfsfix `-n`: 0 when the volume checks out (boot sector, $MFT/$MFTMirr, $Volume), 1 otherwise.
 * - xfs_repair `-n -f` (`-f`: a file, not a device): 0 clean, 1 corruption found, 2 a dirty
 *   log (XFS replays its log only when mounted, which is not done here).
 */
interface Checker {
  tool: string;
  args: string[];
  prepare?: { tool: string; args: string[] };
  verdict(exitCode: number, output: string): { passed: boolean; note?: string };
}

const E2FSCK: Checker = {
  tool: 'e2fsck',
  args: ['-fn'],
  prepare: { tool: 'e2fsck', args: ['-E', 'journal_only', '-p'] },
  verdict: (code) => ({ passed: code === 0 }),
};

const CHECKERS: Partial<Record<FsType, Checker>> = {
  ext2: E2FSCK,
  ext3: E2FSCK,
  ext4: E2FSCK,
  fat12: { tool: 'fsck.fat', args: ['-n'], verdict: (code) => ({ passed: code === 0 }) },
  fat16: { tool: 'fsck.fat', args: ['-n'], verdict: (code) => ({ passed: code === 0 }) },
  fat32: { tool: 'fsck.fat', args: ['-n'], verdict: (code) => ({ passed: code === 0 }) },
  ntfs: { tool: 'ntfsfix', args: ['-n'], verdict: (code) => ({ passed: code === 0 }) },
  xfs: {
    tool: 'xfs_repair',
    args: ['-n', '-f'],
    verdict: (code, output) =>
      code === 2 && /log/i.test(output)
        ? { passed: true, note: 'the XFS log is dirty (a crash-consistent snapshot): the metadata was checked without replaying it' }
        : { passed: code === 0 },
  },
};

/** The checker's command line for a filesystem type, or undefined when there is none. */
export function checkerCommand(type: FsType): string | undefined {
  const checker = CHECKERS[type];
  return checker === undefined ? undefined : `${checker.tool} ${checker.args.join(' ')}`;
}

/**
 * Runs the filesystem's own checker on a volume: its bytes are copied (sparse: holes stay
 * holes) to a temporary file in `workDir`, checked there, and the file is removed. The
 * snapshot itself is never modified. Skipped, with the reason, when the tool is not installed
 * or `workDir` has no room for the volume's data.
 */
export async function runFilesystemChecker(type: FsType, volume: BlockDevice, options: { workDir: string; signal?: AbortSignal }): Promise<CheckerResult | undefined> {
  const checker = CHECKERS[type];
  if (checker === undefined) return undefined;
  const command = `${checker.tool} ${checker.args.join(' ')}`;
  const toolPath = await findTool(checker.tool);
  if (toolPath === undefined) return { command, exitCode: null, passed: true, skipped: `${checker.tool} is not installed` };
  let dataBytes = 0;
  for await (const extent of volume.extents()) if (extent.kind === 'data') dataBytes += extent.length;
  const free = await fsp.statfs(options.workDir).then((s) => s.bavail * s.bsize, () => Number.POSITIVE_INFINITY);
  if (dataBytes > free * 0.9) return { command, exitCode: null, passed: true, skipped: `${options.workDir} has no room for a ${dataBytes}-byte copy of the volume` };
  const dir = await fsp.mkdtemp(path.join(options.workDir, 'coffer-test-restore-'));
  const file = path.join(dir, 'volume.img');
  try {
    const target = await openRawTarget(file, volume.size, { overwrite: false });
    try {
      await copyDevice(volume, target, { blockSize: 1 << 20, inFlight: 8, ...(options.signal ? { signal: options.signal } : {}) });
    } catch (error) {
      // Unreadable chunks are already reported with the disk; the checker cannot run without them.
      if (!isCofferError(error) || (error.code !== 'E_CORRUPT_OBJECT' && error.code !== 'E_MISSING_OBJECT')) throw error;
      return { command, exitCode: null, passed: true, skipped: `the volume cannot be read whole (${error.message})` };
    }
    if (checker.prepare !== undefined) await runProcess((await findTool(checker.prepare.tool)) ?? toolPath, [...checker.prepare.args, file], options.signal);
    const run = await runProcess(toolPath, [...checker.args, file], options.signal);
    const verdict = checker.verdict(run.exitCode, run.output);
    const output = [...run.output.trimEnd().split('\n').slice(-OUTPUT_LINES), ...(verdict.note ? [`coffer: ${verdict.note}`] : [])].join('\n');
    return { command, exitCode: run.exitCode, passed: verdict.passed, output };
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

async function findTool(name: string): Promise<string | undefined> {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    if (await fsp.access(candidate, fsConstants.X_OK).then(() => true, () => false)) return candidate;
  }
  return undefined;
}

/** Runs a tool to its end (killed at the deadline or on abort); its stdout and stderr merged. */
async function runProcess(tool: string, args: string[], signal?: AbortSignal): Promise<{ exitCode: number; output: string }> {
  const child = spawn(tool, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
  const chunks: Buffer[] = [];
  let kept = 0;
  const keep = (d: Buffer) => {
    chunks.push(d);
    kept += d.length;
    while (kept > 1 << 20 && chunks.length > 1) kept -= (chunks.shift() as Buffer).length; // the tail is what matters
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const kill = () => child.kill('SIGKILL');
  const timer = setTimeout(kill, CHECKER_TIMEOUT_MS);
  signal?.addEventListener('abort', kill, { once: true });
  try {
    const [code, killedBy] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c, s) => resolve([c, s]));
    });
    if (signal?.aborted) throw new CofferError('E_INTERRUPTED', 'test restore interrupted');
    const output = Buffer.concat(chunks).toString('utf8');
    if (code === null) return { exitCode: 128, output: `${output}\ncoffer: ${path.basename(tool)} was killed by ${killedBy ?? 'a signal'} (over ${CHECKER_TIMEOUT_MS / 60_000} minutes?)` };
    return { exitCode: code, output };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', kill);
  }
}
