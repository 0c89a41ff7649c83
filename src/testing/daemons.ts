/**
 * Long-running peer programs for integration tests (qemu-nbd, QEMU…): started, waited for
 * until their socket exists, and always stopped, even when a test fails. Plus throwaway
 * folders removed at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** A started program; `stop()` ends it (SIGTERM, then SIGKILL after 2 s) and is idempotent. */
export interface Daemon {
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts `tool args` and resolves once `socketPath` exists (within `timeoutMs`, default 10 s);
 * rejects with the program's stderr if it exits first or never creates the socket.
 */
export async function startDaemon(tool: string, args: string[], socketPath: string, timeoutMs = 10_000): Promise<Daemon> {
  const child = spawn(tool, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', (error) => (stderr += String(error)));
  let stopping: Promise<void> | undefined;
  const daemon: Daemon = {
    child,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
          await exited;
          clearTimeout(timer);
        }
      })();
      return stopping;
    },
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fs.stat(socketPath).then(() => true, () => false)) return daemon;
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      await daemon.stop();
      throw new Error(`${tool} ${args.join(' ')} did not start: ${stderr || `exit ${child.exitCode ?? child.signalCode}`}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A new empty folder under the system's temporary folder; `remove()` deletes it. */
export async function makeTempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `${prefix}-`));
  return { path: dir, remove: () => fs.rm(dir, { recursive: true, force: true }) };
}
