import type { CodecSettings } from './codec.js';
import type { MasterKey } from './keys/master-key.js';

/**
 * What a codec thread is started with (piscina's `workerData`): the codec's settings, with the
 * master key in a slot of shared memory that the pool may fill after the threads start. So a
 * command that will need the threads starts them while the key is still being derived
 * (scrypt, ~0.13 s): they load their code meanwhile (~0.1 CPU-s each), and a thread builds
 * its codec at its first task, which never comes before the key (CodecPool.giveKey).
 *
 * The slot (KEY_SLOT_BYTES): an Int32 at byte 0, 1 once the key is written; the encryption key
 * at bytes 4-35 and the id key at 36-67. Zeroed when the pool closes.
 */
export interface CodecThreadData {
  compressionLevel: number;
  /** False for an unencrypted repository: the slot stays empty. */
  encrypted: boolean;
  keySlot: SharedArrayBuffer;
}

/** Bytes of a key slot. */
export const KEY_SLOT_BYTES = 4 + 32 + 32;

/** Writes `key` into `slot` and marks it given. */
export function writeKeySlot(slot: SharedArrayBuffer, key: MasterKey): void {
  const bytes = new Uint8Array(slot);
  bytes.set(key.encryptionKey, 4);
  bytes.set(key.idKey, 36);
  Atomics.store(new Int32Array(slot, 0, 1), 0, 1);
}

/** Zeroes `slot` (the pool is closed: no thread reads it again). */
export function clearKeySlot(slot: SharedArrayBuffer): void {
  Atomics.store(new Int32Array(slot, 0, 1), 0, 0);
  new Uint8Array(slot).fill(0);
}

/** The codec settings a thread builds its codec from. @throws Error when the key was never given (a bug: a task before the key). */
export function settingsFromThreadData(data: CodecThreadData): CodecSettings {
  if (!data.encrypted) return { compressionLevel: data.compressionLevel, masterKey: null };
  if (Atomics.load(new Int32Array(data.keySlot, 0, 1), 0) !== 1) throw new Error('a codec thread got a task before the repository key');
  const bytes = Buffer.from(data.keySlot);
  return { compressionLevel: data.compressionLevel, masterKey: { encryptionKey: Buffer.from(bytes.subarray(4, 36)), idKey: Buffer.from(bytes.subarray(36, 68)) } };
}
