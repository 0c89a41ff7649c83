import { randomBytes } from 'node:crypto';
import { isCofferError } from '../errors/index.js';
import type { Backend } from './backend/backend.js';
import { SPACE_RESERVE_KEY } from './layout.js';

/**
 * The space reserve of a repository on storage that can fill up (a local folder: the backend
 * says so with `fillsUp`). Backups that fill the disk stop with E_NO_SPACE, and then prune, the
 * one command that gives space back, needs a little room of its own before it may delete
 * anything: its lease, the index segments written again without the removed packs, the
 * pack-removal record (docs/repository-format.md §19.7). On a disk full to the last block
 * those writes fail too, and the repository could not be pruned at all (borg keeps free space
 * for the same reason, restic has `prune --unsafe-recover-no-free-space`).
 *
 * So `init` writes `reserve`: {@link SPACE_RESERVE_BYTES} of random bytes (random, so that a
 * compressing filesystem really allocates them; one random MiB repeated, which a filesystem
 * compressing records of up to 1 MiB cannot shrink either). Nothing reads it. Prune
 * deletes it when it runs out of room and writes it back at its end
 * (prune.ts: {@link releaseSpaceReserve}, {@link keepSpaceReserve}); a repository made before
 * the reserve existed gets one at its next prune.
 */
export const SPACE_RESERVE_BYTES = 16 * 1024 * 1024;

const MiB = 1024 * 1024;

/** The reserve's size now: 0 when there is none. */
async function reserveSize(backend: Backend): Promise<number> {
  for await (const entry of backend.list(SPACE_RESERVE_KEY)) if (entry.key === SPACE_RESERVE_KEY) return entry.size;
  return 0;
}

/**
 * Writes the reserve when the storage fills up and it is missing or short (truncated by hand
 * or by a full disk): `written`. `no-room` when it could not be written for lack of room (never
 * thrown: a full disk is what it is for); `present` when it was in place (or the storage needs none).
 */
export async function keepSpaceReserve(backend: Backend): Promise<'present' | 'written' | 'no-room'> {
  if (backend.fillsUp !== true) return 'present';
  if ((await reserveSize(backend)) >= SPACE_RESERVE_BYTES) return 'present';
  try {
    const mib = randomBytes(MiB);
    await backend.put(SPACE_RESERVE_KEY, Buffer.concat(Array.from({ length: SPACE_RESERVE_BYTES / MiB }, () => mib)));
    return 'written';
  } catch (error) {
    if (isCofferError(error, 'E_NO_SPACE')) return 'no-room';
    throw error;
  }
}

/** Deletes the reserve to give its room to prune; the bytes it held (0: there was none). */
export async function releaseSpaceReserve(backend: Backend): Promise<number> {
  if (backend.fillsUp !== true) return 0;
  const size = await reserveSize(backend);
  if (size > 0) await backend.delete(SPACE_RESERVE_KEY);
  return size;
}
