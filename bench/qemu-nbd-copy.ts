/**
 * The reference side of the NBD speed rows (issue #5): nbdcopy of an export served by
 * `qemu-nbd` from a raw image, and how the bench stops the servers it starts.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { run, timed } from './exec.js';
import { warm } from './measure.js';

/**
 * Seconds nbdcopy takes to read `image` (raw) whole through `qemu-nbd` on `socket`. The image
 * is read into the page cache first, so qemu-nbd serves it warm, as Coffer's repository is:
 * since 2026-11-27 `coffer restore` writes past the page cache (O_DIRECT), so the freshly
 * restored image would otherwise come from the disk and flatter Coffer's ratio.
 */
export async function nbdcopyThroughQemuNbd(image: string, socket: string): Promise<number> {
  await warm([image]);
  // -t: keep serving after the readiness probe disconnects (qemu-nbd exits with its last client otherwise).
  const server = spawn('qemu-nbd', ['-t', '-r', '-f', 'raw', '-x', 'disk0', '-k', socket, '--shared=4', image], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 500; i++) {
      if ((await run('nbdinfo', ['--size', `nbd+unix:///disk0?socket=${socket}`], { allowFail: true })).code === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return (await timed('nbdcopy', [`nbd+unix:///disk0?socket=${socket}`, 'null:'])).m.wallS;
  } finally {
    await stopProcess(server);
  }
}

/** SIGTERM, SIGKILL after 5 s, and waits until the process is gone (at once if it already is). */
export async function stopProcess(child: ReturnType<typeof spawn>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
