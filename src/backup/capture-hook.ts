/**
 * The capture hooks of a live VM backup: shell commands run just before and just after the
 * instant the running VM's disks are captured (e.g. to flush a database that has no guest
 * agent to freeze it).
 */
import { spawn } from 'node:child_process';
import { CofferError } from '../errors/index.js';

/** A hook that runs longer than this is killed and counts as failed. */
const HOOK_TIMEOUT_MS = 5 * 60_000;

/** Which side of the capture a hook runs on. */
export type CapturePhase = 'pre-capture' | 'post-capture';

/**
 * Runs a hook command with `/bin/sh -c`, its standard output and error handed to `output` as
 * they come, with `COFFER_VM` and `COFFER_HOOK` (`pre-capture` / `post-capture`) in its
 * environment. Resolves when it exits 0; otherwise (or after 5 minutes, killed) throws
 * `E_SOURCE_UNREADABLE` naming the hook and how it ended.
 */
export async function runCaptureHook(command: string, how: { phase: CapturePhase; vm: string; output: (data: Buffer) => void }): Promise<void> {
  const { phase, vm, output } = how;
  const child = spawn('/bin/sh', ['-c', command], { env: { ...process.env, COFFER_VM: vm, COFFER_HOOK: phase }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', output);
  child.stderr.on('data', output);
  const timer = setTimeout(() => child.kill('SIGKILL'), HOOK_TIMEOUT_MS);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c, s) => resolve([c, s]));
  }).finally(() => clearTimeout(timer));
  if (code !== 0) {
    const ended = signal !== null ? `was killed by ${signal}${signal === 'SIGKILL' ? ' (timeout?)' : ''}` : `exited with ${code}`;
    throw new CofferError('E_SOURCE_UNREADABLE', `the ${phase} hook ${JSON.stringify(command)} ${ended}`);
  }
}
