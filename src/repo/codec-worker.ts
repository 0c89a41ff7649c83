/**
 * The body of a codec worker thread: the CPU-heavy half of storing and reading objects
 * (hashing, compression, encryption and their inverses), so the main thread never hashes or
 * compresses large buffers. Loaded by {@link CodecPool} through piscina; one
 * {@link ObjectCodec} per thread, built from the settings passed as workerData.
 */
import { Piscina, workerData } from 'piscina';
import { isCofferError } from '../errors/index.js';
import { createHash } from 'node:crypto';
import { ObjectCodec } from './codec.js';
import { openFrame, sealFrameInPlace } from './frame-codec.js';
import { blockFingerprint, FINGERPRINT_BYTES, sameFingerprint } from './block-fingerprint.js';
import { ObjectKind } from './format/envelope.js';
import { FastCdc } from './fastcdc.js';
import type { CodecTask, CodecResult, WireTable } from './codec-pool.js';
import { decodeEnvelopeHeader } from './format/envelope.js';
import { settingsFromThreadData, type CodecThreadData } from './codec-thread-data.js';
import { copyBytes } from '../native/index.js';

const toBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
let built: ObjectCodec | undefined;

/**
 * This thread's codec, built at its first task from the settings and the key slot the pool
 * gave it: a pool may be started before the key is known (CodecPool), never used before.
 */
function codec(): ObjectCodec {
  built ??= new ObjectCodec(settingsFromThreadData(workerData as CodecThreadData));
  return built;
}
let zeros = Buffer.alloc(0);

function isAllZero(bytes: Buffer): boolean {
  if (zeros.length < bytes.length) zeros = Buffer.alloc(bytes.length);
  return bytes.equals(zeros.subarray(0, bytes.length));
}

function hashOf(bytes: Buffer): { zero: boolean; id: Uint8Array | null } {
  return isAllZero(bytes) ? { zero: true, id: null } : { zero: false, id: codec().idOf(bytes) };
}

/** {@link hashOf}, and the sealed object too with `seal` (never for a zero block). */
function hashSealOf(bytes: Buffer, kind: ObjectKind, seal: boolean): { zero: boolean; id: Uint8Array | null; sealed: Uint8Array | null } {
  const hash = hashOf(bytes);
  return { ...hash, sealed: seal && hash.id !== null ? codec().seal(bytes, kind, toBuffer(hash.id)) : null };
}

/**
 * A frame's table as it crosses back: the ids copied out of the plaintext (which may be
 * reused) into one buffer of their own, with the offsets and lengths beside them. Posting
 * a small Buffer clones the whole 8 KiB pool it is a view into: one id Buffer each cost a
 * clone of that pool per frame.
 */
function tableOf(table: readonly { id: Uint8Array; offset: number; length: number }[]): WireTable {
  const ids = Buffer.allocUnsafeSlow(table.reduce((sum, c) => sum + c.id.length, 0));
  const places: number[] = [];
  let at = 0;
  for (const c of table) {
    ids.set(c.id, at);
    at += c.id.length;
    places.push(c.id.length, c.offset, c.length);
  }
  return { ids, places };
}

/**
 * A result whose buffers move to the main thread instead of being cloned: piscina transfers
 * what a "movable" result names (only at the top level of the result).
 */
function moving(result: CodecResult, buffers: ArrayBuffer[]): CodecResult {
  const movable = { [Piscina.transferableSymbol]: buffers, [Piscina.valueSymbol]: result };
  return Piscina.move(movable as unknown as Parameters<typeof Piscina.move>[0]) as unknown as CodecResult;
}

/** Runs one task; errors come back as values so their codes survive the thread boundary. */
export default function run(task: CodecTask): CodecResult {
  try {
    switch (task.op) {
      case 'hash':
        return { op: 'hash', ...hashOf(toBuffer(task.data)) };
      case 'hashMany': {
        const all = toBuffer(task.data);
        let at = 0;
        const hashes = task.lengths.map((length) => {
          const hash = hashOf(all.subarray(at, at + length));
          at += length;
          return hash;
        });
        return { op: 'hashMany', hashes };
      }
      case 'fingerprintHashMany': {
        const all = toBuffer(task.data);
        const tags = Buffer.alloc(task.lengths.length * FINGERPRINT_BYTES);
        const same: boolean[] = [];
        const older: boolean[] = [];
        let at = 0;
        const hashes = task.lengths.map((length, i) => {
          const block = all.subarray(at, at + length);
          at += length;
          blockFingerprint(task.key, task.indexes[i] as number, block, tags, i * FINGERPRINT_BYTES);
          const unchanged = sameFingerprint(task.expected, tags, i * FINGERPRINT_BYTES);
          const reverted = !unchanged && task.older !== undefined && sameFingerprint(task.older, tags, i * FINGERPRINT_BYTES);
          same.push(unchanged);
          older.push(reverted);
          return unchanged || reverted ? null : hashOf(block);
        });
        return { op: 'fingerprintHashMany', same, older, hashes, tags };
      }
      case 'cutHashSeal': {
        const data = toBuffer(task.data);
        const cdc = new FastCdc(task.sizes);
        const lengths: number[] = [];
        const results: { zero: boolean; id: Uint8Array | null; sealed: Uint8Array | null }[] = [];
        for (let start = 0; start < data.length && (task.ended || data.length - start >= task.sizes.max); ) {
          const length = cdc.cut(data, start, data.length);
          results.push(hashSealOf(data.subarray(start, start + length), ObjectKind.chunk, task.seal));
          lengths.push(length);
          start += length;
        }
        return { op: 'cutHashSeal', lengths, results };
      }
      case 'hashSealMany': {
        const results = task.objects.map((o) => hashSealOf(toBuffer(o.data), o.kind as ObjectKind, o.seal));
        return { op: 'hashSealMany', results };
      }
      case 'seal':
        return { op: 'seal', sealed: codec().seal(toBuffer(task.data), task.kind as ObjectKind, toBuffer(task.id)) };
      case 'sealMany': {
        const all = toBuffer(task.data);
        let at = 0;
        const sealed = task.objects.map((o) => {
          const data = all.subarray(at, at + o.length);
          at += o.length;
          return codec().seal(data, o.kind as ObjectKind, toBuffer(o.id));
        });
        return { op: 'sealMany', sealed };
      }
      case 'open': {
        const plaintext = codec().open(task.data, task.kind as ObjectKind, task.name, toBuffer(task.id), { rehash: task.rehash });
        if (task.into === 'discard') return { op: 'open', length: plaintext.length, plaintext: null };
        if (task.into !== undefined) {
          if (task.into.length < plaintext.length) throw new RangeError('output buffer too small');
          copyBytes(task.into, plaintext);
          return { op: 'open', length: plaintext.length, plaintext: null };
        }
        return { op: 'open', length: plaintext.length, plaintext };
      }
      case 'openMany': {
        const results = task.objects.map((o) => {
          try {
            const plaintext = codec().open(o.data, o.kind as ObjectKind, o.name, toBuffer(o.id), { rehash: o.rehash, scratch: true });
            if (o.into.length < plaintext.length) throw new RangeError('output buffer too small');
            copyBytes(o.into, plaintext);
            return { length: plaintext.length };
          } catch (error) {
            if (isCofferError(error)) return { code: error.code, message: error.message, object: error.subject.object ?? null };
            throw error;
          }
        });
        return { op: 'openMany', results };
      }
      case 'sealFrame':
        return { op: 'sealFrame', length: sealFrameInPlace(codec(), task.slot, task.length) };
      case 'openFrame': {
        if (task.keep && task.into === undefined) {
          // The plaintext crosses back: decoded into memory of its own, which moves (a clone
          // of a 512 KiB frame cost serve's main thread a memmove of each, 2026-11-28).
          const own = Buffer.allocUnsafeSlow(decodeEnvelopeHeader(task.data, ObjectKind.packFrame, task.name).plaintextLength);
          const { plaintext, table } = openFrame(codec(), task.data, task.name, task.rehash, false, own);
          const wire = tableOf(table);
          return moving({ op: 'openFrame', plaintext, length: plaintext.length, table: wire }, [own.buffer as ArrayBuffer, wire.ids.buffer as ArrayBuffer]);
        }
        // Decompressed straight into `into` when given, into the codec's reused buffer otherwise.
        const { plaintext, table } = openFrame(codec(), task.data, task.name, task.rehash, task.into === undefined, task.into);
        const wire = tableOf(table);
        return moving({ op: 'openFrame', plaintext: null, length: plaintext.length, table: wire }, [wire.ids.buffer as ArrayBuffer]);
      }
      case 'openFrames': {
        // The frames of one span of a pack, read with one ranged read and moved here at once.
        const all = toBuffer(task.data);
        const results = task.frames.map((frame, i) => {
          try {
            const blob = all.subarray(frame.offset, frame.offset + frame.length);
            const into = task.into?.[i];
            const { plaintext, table } = openFrame(codec(), blob, frame.name, task.rehash, true, into);
            return { length: plaintext.length, table: tableOf(table) };
          } catch (error) {
            if (isCofferError(error)) return { code: error.code, message: error.message, object: error.subject.object ?? null };
            throw error;
          }
        });
        return { op: 'openFrames', results };
      }
      case 'sha256':
        return { op: 'sha256', digest: createHash('sha256').update(toBuffer(task.data)).digest() };
      case 'load':
        return { op: 'load' }; // this module is loaded: that was the task (CodecPool.start)
      case 'checkMany': {
        const problems = task.objects.map((o) => {
          try {
            codec().open(o.data, o.kind as ObjectKind, o.name, toBuffer(o.id), { rehash: true, scratch: true });
            return null;
          } catch (error) {
            if (isCofferError(error)) return { code: error.code, message: error.message, object: error.subject.object ?? null };
            throw error;
          }
        });
        return { op: 'checkMany', problems };
      }
    }
  } catch (error) {
    if (isCofferError(error)) return { op: 'error', code: error.code, message: error.message, object: error.subject.object ?? null };
    throw error;
  }
}
