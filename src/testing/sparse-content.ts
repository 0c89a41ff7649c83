/**
 * The expected content of a big test disk, kept as the places its data lies (zeros everywhere
 * else), so that the disk-format writer tests check 600 MiB disks without 600 MiB buffers. On
 * these machines a buffer that size costs seconds at every step (2026-11-29, a fixed VHD of
 * 600 MiB: concatenating the padding 2.1 s, reading qemu-img's raw output whole 5 s, 7-Zip's
 * output buffered by execFile 9.5 s, our reader's one 600 MiB read 6 s); compared piece by
 * piece the same checks take well under a second each.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';

/** Bytes at an offset of a disk. */
export interface ContentPiece {
  offset: number;
  bytes: Buffer;
}

/** A disk of `size` bytes holding `pieces` (later ones over earlier ones where they overlap), zeros elsewhere. */
export class SparseContent {
  readonly pieces: readonly ContentPiece[];

  constructor(
    readonly size: number,
    pieces: readonly ContentPiece[],
  ) {
    this.pieces = pieces
      .filter((p) => p.offset < size)
      .map((p) => ({ offset: p.offset, bytes: p.bytes.subarray(0, size - p.offset) }));
  }

  /** The same content in a disk of `size` bytes: cut, or followed by zeros (an odd size rounded up to whole sectors). */
  resized(size: number): SparseContent {
    return new SparseContent(size, this.pieces);
  }

  /** `length` bytes from `at` (fewer past the end). */
  slice(at: number, length: number): Buffer {
    const end = Math.min(this.size, at + length);
    const out = Buffer.alloc(Math.max(0, end - at));
    for (const { offset, bytes } of this.pieces) {
      const from = Math.max(at, offset);
      const to = Math.min(end, offset + bytes.length);
      if (from < to) bytes.copy(out, from - at, from - offset, to - offset);
    }
    return out;
  }

  /** Calls `write` for the whole disk in `step`-byte pieces, zeros included (as a restore hands a writer every block). */
  async writeAll(write: (offset: number, bytes: Buffer) => Promise<void>, step = 256 * 1024): Promise<void> {
    for (let at = 0; at < this.size; at += step) await write(at, this.slice(at, step));
  }

  /** A raw file at `path` with this content, its zeros left as holes. */
  async writeRawFile(path: string): Promise<void> {
    const handle = await open(path, 'w');
    try {
      await handle.truncate(this.size);
      for (const { offset, bytes } of this.pieces) await handle.write(bytes, 0, bytes.length, offset);
    } finally {
      await handle.close();
    }
  }

  /** Fails unless `chunks`, one after the other, are exactly this content: `what` names the reader. */
  async assertStreamEquals(chunks: AsyncIterable<Uint8Array>, what: string): Promise<void> {
    let at = 0;
    for await (const chunk of chunks) {
      const expected = this.slice(at, chunk.length);
      if (expected.length < chunk.length) assert.fail(`${what}: more than the disk's ${this.size} bytes`);
      if (!expected.equals(chunk)) assert.fail(`${what}: bytes ${at}..${at + chunk.length} differ from what was written`);
      at += chunk.length;
    }
    assert.equal(at, this.size, `${what}: ${at} bytes, not the disk's ${this.size}`);
  }

  /** Fails unless `read` gives this content, read in `step`-byte pieces. */
  async assertReadsBack(read: (offset: number, length: number) => Promise<Uint8Array>, what: string, step = 8 * 1024 * 1024): Promise<void> {
    for (let at = 0; at < this.size; at += step) {
      const length = Math.min(step, this.size - at);
      const got = await read(at, length);
      if (!this.slice(at, length).equals(got)) assert.fail(`${what}: bytes ${at}..${at + length} differ from what was written`);
    }
  }

  /** Fails unless `command` (for example `7zz e -so IMAGE`) prints exactly this content and exits 0. */
  async assertCommandPrints(command: string, args: readonly string[], what: string): Promise<void> {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const errors: Buffer[] = [];
    child.stderr.on('data', (b: Buffer) => errors.push(b));
    const exited = new Promise<number | null | Error>((resolve) => {
      child.once('error', resolve);
      child.once('close', (code) => resolve(code));
    });
    const compared = await this.assertStreamEquals(child.stdout, what).then(
      () => undefined,
      (error: unknown) => error,
    );
    if (compared !== undefined && child.exitCode === null) child.kill();
    const code = await exited;
    if (code instanceof Error) assert.fail(`${what}: ${command} did not start: ${code.message}`);
    if (compared !== undefined) throw compared;
    assert.equal(code, 0, `${what}: ${command} exited ${code}: ${Buffer.concat(errors).toString().trim()}`);
  }
}
