import { spawn } from 'node:child_process';
import { CofferError } from '../errors/index.js';

/** What a file backup's hook needs. */
export interface TimedHook {
  command: string;
  /** `pre-backup` or `post-backup`, in `COFFER_HOOK`. */
  phase: 'pre-backup' | 'post-backup';
  /** The host name backed up, in `COFFER_HOST`. */
  host: string;
  timeoutMs: number;
  /** Where the hook's output goes (our stderr). */
  output: NodeJS.WritableStream;
  /** For the post hook: `ok`, `failed` or `interrupted`, in `COFFER_RESULT`. */
  result?: string;
}

/**
 * Runs a hook with `/bin/sh -c` in a process group of its own, so that at the deadline the
 * whole group (the shell and what it started: `pg_dump`, `sleep`…) is killed with SIGKILL,
 * never left behind. Resolves when it exits 0; otherwise throws `E_HOOK_FAILED` saying how it
 * ended (exit status, signal, or the timeout).
 */
export async function runTimedHook(hook: TimedHook): Promise<void> {
  const env = { ...process.env, COFFER_HOOK: hook.phase, COFFER_HOST: hook.host, ...(hook.result !== undefined ? { COFFER_RESULT: hook.result } : {}) };
  const child = spawn('/bin/sh', ['-c', hook.command], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  child.stdout.on('data', (d: Buffer) => hook.output.write(d));
  child.stderr.on('data', (d: Buffer) => hook.output.write(d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
  }, hook.timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c, s) => resolve([c, s]));
  }).finally(() => clearTimeout(timer));
  if (code === 0) return;
  const how = timedOut ? `did not end within ${hook.timeoutMs / 1000} s and was killed` : signal !== null ? `was killed by ${signal}` : `exited with ${code}`;
  throw new CofferError('E_HOOK_FAILED', `the ${hook.phase} hook ${JSON.stringify(hook.command)} ${how}`);
}
