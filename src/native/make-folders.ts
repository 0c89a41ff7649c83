import { mkdirSync, statSync, type Stats } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/**
 * `mkdir -p`: makes `path` and the folders above it that are missing, each with `mode`
 * (umask applied). Node's own `mkdir(path, { recursive: true })` loops forever, on its thread
 * pool or the main thread, where mkdir answers ENOENT although the parent exists (/proc/sys;
 * checked with Node 20 on these machines: `mkdirSync('/proc/sys/x', { recursive: true })`
 * never returns, and no signal ends it). Here each missing folder is made once, top down, and
 * the first refusal is thrown as the system gave it (ENOENT, EACCES, ENOSPC, EROFS…);
 * something that is not a folder on the way is ENOTDIR, a dangling symbolic link ENOENT. A
 * folder made meanwhile by someone else is fine. `hostPath` gives the path each call takes
 * (names/byte-names.ts `hostPath`: a name's raw bytes, not U+FFFD, for one that is not UTF-8).
 */
export async function makeFolders(path: string, mode = 0o777, hostPath: HostPathOf = asItIs): Promise<void> {
  const missing: string[] = [];
  for (let at = resolve(path); ; at = dirname(at)) {
    const info = await stat(hostPath(at)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
      return undefined;
    });
    if (info !== undefined) {
      checkFolder(info, at);
      break;
    }
    missing.push(at);
    if (dirname(at) === at) break;
  }
  for (const folder of missing.reverse()) {
    try {
      await mkdir(hostPath(folder), { mode });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      checkFolder(await stat(hostPath(folder)), folder); // made meanwhile (fine), or a dangling link (ENOENT)
    }
  }
}

/** {@link makeFolders}, synchronously (for code that runs its file calls on the main thread). */
export function makeFoldersSync(path: string, mode = 0o777, hostPath: HostPathOf = asItIs): void {
  const missing: string[] = [];
  for (let at = resolve(path); ; at = dirname(at)) {
    let info: Stats | undefined;
    try {
      info = statSync(hostPath(at));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (info !== undefined) {
      checkFolder(info, at);
      break;
    }
    missing.push(at);
    if (dirname(at) === at) break;
  }
  for (const folder of missing.reverse()) {
    try {
      mkdirSync(hostPath(folder), { mode });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      checkFolder(statSync(hostPath(folder)), folder);
    }
  }
}

/** The path a system call takes for a path string. */
export type HostPathOf = (path: string) => string | Buffer;

const asItIs: HostPathOf = (path) => path;

function checkFolder(info: Stats, path: string): void {
  if (!info.isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${path}'`), { code: 'ENOTDIR', errno: -20, syscall: 'mkdir', path });
}
