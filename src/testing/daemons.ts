/**
 * Long-running peer programs for integration tests (qemu-nbd, QEMU…): started, waited for
 * until their socket accepts connections, and always stopped, even when a test fails. Plus
 * throwaway folders removed at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** A started program; `stop()` ends it (SIGTERM, then SIGKILL after 2 s) and is idempotent. */
export interface Daemon {
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts `tool args` and resolves once `socketPath` accepts a connection (within `timeoutMs`,
 * default 10 s); rejects with the program's stderr if it exits first or never listens. The
 * socket's file appears at bind(), before listen(): a client that connects in between gets
 * ECONNREFUSED (a fresh-clone CI run failed so), hence the probe connection. The probe closes
 * without a word, so servers that exit after their first client (qemu-nbd without -t) must not
 * be started this way.
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
    if (await acceptsConnections(socketPath)) return daemon;
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      await daemon.stop();
      throw new Error(`${tool} ${args.join(' ')} did not start: ${stderr || `exit ${child.exitCode ?? child.signalCode}`}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Whether a Unix socket at `socketPath` accepts a connection now (closed again at once). */
export function acceptsConnections(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createConnection(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => {
      probe.destroy();
      resolve(false);
    });
  });
}

/** A new empty folder under the system's temporary folder; `remove()` deletes it. */
export async function makeTempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `${prefix}-`));
  return { path: dir, remove: () => fs.rm(dir, { recursive: true, force: true }) };
}
