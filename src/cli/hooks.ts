import { spawn } from 'node:child_process';
import { CofferError } from '../errors/index.js';

/** A hook that runs longer than this is killed and counts as failed. */
const HOOK_TIMEOUT_MS = 5 * 60_000;

/**
 * Runs a hook command with `/bin/sh -c`, its output passed to our stderr, with `COFFER_VM`
 * and `COFFER_HOOK` (`pre-capture` / `post-capture`) in its environment. Resolves when it
 * exits 0; otherwise throws `E_SOURCE_UNREADABLE` naming the hook and how it ended.
 */
export async function runHook(command: string, phase: 'pre-capture' | 'post-capture', vm: string, stderr: NodeJS.WritableStream): Promise<void> {
  const child = spawn('/bin/sh', ['-c', command], { env: { ...process.env, COFFER_VM: vm, COFFER_HOOK: phase }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d: Buffer) => stderr.write(d));
  child.stderr.on('data', (d: Buffer) => stderr.write(d));
  const timer = setTimeout(() => child.kill('SIGKILL'), HOOK_TIMEOUT_MS);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c, s) => resolve([c, s]));
  }).finally(() => clearTimeout(timer));
  if (code !== 0) {
    const how = signal !== null ? `was killed by ${signal}${signal === 'SIGKILL' ? ' (timeout?)' : ''}` : `exited with ${code}`;
    throw new CofferError('E_SOURCE_UNREADABLE', `the ${phase} hook ${JSON.stringify(command)} ${how}`);
  }
}
