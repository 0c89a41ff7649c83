import { open } from 'node:fs/promises';

/**
 * Damages the file at `path` in one place, as a failing disk or a bad copy would: the byte at
 * `at` XOR `mask` (every bit by default), written in place; the rest of the file untouched.
 */
export async function flipByte(path: string, at: number, mask = 0xff): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    const { bytesRead } = await handle.read(byte, 0, 1, at);
    if (bytesRead !== 1) throw new RangeError(`${path} has no byte at ${at}`);
    byte[0] = (byte[0] as number) ^ mask;
    await handle.write(byte, 0, 1, at);
  } finally {
    await handle.close();
  }
}
