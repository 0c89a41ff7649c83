/**
 * Shared set-up of the task runner's tests (not a test itself): a repository, small VM disk
 * images of pseudo-random data, a state database file, and helpers to wait for tasks.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openStateDatabase, type StateDatabase } from '../state/index.js';
import { initRepository, LocalBackend } from '../../repo/index.js';
import type { RunInfo } from './task-types.js';
import type { TaskRunner } from './task-runner.js';
import type { VmTarget } from './task-types.js';

/** A repository at `dir/repo` with passphrase file `dir/pass`, and the target of each VM `dir/NAME.raw` of `size` bytes. */
export async function makeRepository(dir: string): Promise<{ url: string; passphraseFile: string }> {
  const url = join(dir, 'repo');
  const passphraseFile = join(dir, 'pass');
  await writeFile(passphraseFile, 'pw\n');
  await initRepository(new LocalBackend(url), { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * 1024 });
  return { url, passphraseFile };
}

/** Writes a disk image of pseudo-random bytes for each VM and returns their targets. */
export async function makeVms(dir: string, repository: { url: string; passphraseFile: string }, vms: readonly { vm: string; host: string; datastore?: string }[], size: number): Promise<VmTarget[]> {
  const { randomBytes } = await import('node:crypto');
  const out: VmTarget[] = [];
  for (const v of vms) {
    const image = join(dir, `${v.vm}.raw`);
    await writeFile(image, randomBytes(size));
    out.push({ vm: v.vm, host: v.host, ...(v.datastore === undefined ? {} : { datastore: v.datastore }), repository: { name: 'main', ...repository }, source: { images: [image] } });
  }
  return out;
}

/** Opens (and migrates) the state database file. */
export function openState(file: string): Promise<StateDatabase> {
  return openStateDatabase({ file });
}

/** Resolves with the run once it is no longer running; rejects after `timeoutMs`. */
export async function runEnded(runner: TaskRunner, runId: string, timeoutMs: number): Promise<RunInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await runner.getRun(runId);
    if (run.status !== 'running') return run;
    if (Date.now() > deadline) throw new Error(`run ${runId} still running after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Polls `check` every 25 ms until it returns a value, or rejects after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
