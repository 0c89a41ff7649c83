/**
 * What the repository and backup tests share: a repository opened for the length of a
 * callback (passphrase `pw`, two codec threads), and a backup of image files as a VM.
 */
import { backupVm, type BackupOptions } from '../backup/index.js';
import { openRepository, type Backend, type Repository } from '../repo/index.js';
import { openImageSource } from '../source/index.js';

/** Opens the repository on `backend` with passphrase `pw`, runs `fn`, and closes it. */
export async function withRepo<T>(backend: Backend, fn: (repo: Repository) => Promise<T>): Promise<T> {
  const repo = await openRepository(backend, { passphrase: 'pw', threads: 2 });
  try {
    return await fn(repo);
  } finally {
    await repo.close();
  }
}

/** Backs up the image file at `path` (or the files at `paths`, the VM's disks in order) as VM `vm`. */
export async function backupFile(repo: Repository, vm: string, path: string | readonly string[], options: BackupOptions = {}) {
  const source = await openImageSource(vm, typeof path === 'string' ? [path] : [...path]);
  try {
    return await backupVm(repo, source, options);
  } finally {
    await source.close();
  }
}
