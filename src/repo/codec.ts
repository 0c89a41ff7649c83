import { createCipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Compressor, Decompressor } from 'zstd-napi';
import zstdBinding from 'zstd-napi/binding.js';
import { CofferError } from '../errors/index.js';
import { aead, copyBytes } from '../native/index.js';
import {
  Compression,
  decodeEnvelopeHeader,
  encodeEnvelopeHeader,
  ENVELOPE_HEADER_SIZE,
  Encryption,
  NONCE_SIZE,
  ObjectKind,
  TAG_SIZE,
} from './format/envelope.js';
import type { MasterKey } from './keys/master-key.js';

/** The most bytes a sealed object has beyond its plaintext (header, nonce, GCM tag; raw when zstd does not shrink). */
export const SEAL_OVERHEAD = ENVELOPE_HEADER_SIZE + NONCE_SIZE + TAG_SIZE;

/** An object's content address: 32 bytes. */
export type ObjectId = Buffer;

/** The settings a codec needs; plain data, so it can be handed to worker threads. */
export interface CodecSettings {
  /** null for an unencrypted repository. */
  masterKey: MasterKey | null;
  /** zstd level; 0 stores everything uncompressed. */
  compressionLevel: number;
}

/**
 * Turns plaintext into stored objects and back: content address, compression, encryption,
 * and the integrity check on every read.
 *
 * - The id of a plaintext is SHA-256 of it, or HMAC-SHA256 keyed with the repository's id key
 *   when the repository is encrypted (so ids reveal nothing about content).
 * - `seal` compresses with zstd and keeps the compressed form only when it is smaller, then
 *   encrypts with AES-256-GCM under a fresh random nonce, authenticating the header and the
 *   object's id with it: an encrypted object opens only under the id it was sealed for.
 * - `open` checks the envelope, authenticates, decompresses, checks the length, and
 *   recomputes the id from the plaintext — always in an unencrypted repository (the hash is
 *   the only integrity check there), and in an encrypted one when `rehash` is asked (verify
 *   does; restore relies on the tag, which already binds content and id). A swapped or
 *   rotted object is reported as `E_CORRUPT_OBJECT`, never returned.
 *
 * Not safe for concurrent use across threads; each worker builds its own.
 */
/**
 * zstd's hash table for {@link ObjectCodec.sealInto} at the default level 3: 2^16 entries
 * instead of the 2^17 zstd picks for inputs over 256 KiB (a format 2 frame is up to 2 MiB).
 * Its tables then fit a core's L2 cache beside the input: on the bench disk's 2 MiB frames,
 * compression took 20-35 % less CPU (249 → 298 MB per CPU-second interleaved, 228 → 308 in
 * separate runs; 256 KiB chunks get ~310) for 0.4 % more stored bytes (bench/README.md,
 * "Backup speed on format 2", 2026-11-26).
 * Other levels keep zstd's own parameters; the output is ordinary zstd either way.
 */
const FRAME_HASH_LOG_LEVEL = 3;
const FRAME_HASH_LOG = 16;

export class ObjectCodec {
  private readonly compressor: Compressor | undefined;
  private readonly decompressor = new Decompressor();
  /** zstd's own context, to decompress into {@link scratch} (the Decompressor always allocates). */
  private readonly dctx = new zstdBinding.DCtx();
  /** Reused plaintext buffer of `open(…, { scratch: true })`. */
  private scratch = Buffer.alloc(0);
  /** Reused buffer a compressed object is decrypted into, before it is decompressed. */
  private payloadScratch = Buffer.alloc(0);
  /** zstd's context for {@link sealInto}, which compresses into {@link compressed}. */
  private readonly cctx: InstanceType<typeof zstdBinding.CCtx> | undefined;
  /** Reused output of {@link sealInto}'s compression. */
  private compressed = Buffer.alloc(0);

  constructor(private readonly settings: CodecSettings) {
    if (settings.compressionLevel > 0) {
      this.compressor = new Compressor();
      this.compressor.setParameters({ compressionLevel: settings.compressionLevel, contentSizeFlag: true });
      this.cctx = new zstdBinding.CCtx();
      this.cctx.setParameter(zstdBinding.CParameter.compressionLevel, settings.compressionLevel);
      this.cctx.setParameter(zstdBinding.CParameter.contentSizeFlag, 1);
      if (settings.compressionLevel === FRAME_HASH_LOG_LEVEL) this.cctx.setParameter(zstdBinding.CParameter.hashLog, FRAME_HASH_LOG);
    }
  }

  get encrypted(): boolean {
    return this.settings.masterKey !== null;
  }

  /** The content address of `plaintext`. */
  idOf(plaintext: Uint8Array): ObjectId {
    const key = this.settings.masterKey;
    return key === null
      ? createHash('sha256').update(plaintext).digest()
      : createHmac('sha256', key.idKey).update(plaintext).digest();
  }

  /** The stored form of `plaintext`, whose id is `id`. */
  seal(plaintext: Uint8Array, kind: ObjectKind, id: ObjectId): Buffer {
    let compression: Compression = Compression.none;
    let payload: Uint8Array = plaintext;
    if (this.compressor !== undefined && plaintext.length > 0) {
      const compressed = this.compressor.compress(plaintext);
      if (compressed.length < plaintext.length) {
        compression = Compression.zstd;
        payload = compressed;
      }
    }
    const key = this.settings.masterKey;
    if (key === null) {
      const header = encodeEnvelopeHeader({ kind, compression, encryption: Encryption.none, plaintextLength: plaintext.length, nonce: undefined });
      return Buffer.concat([header, payload]);
    }
    const nonce = randomBytes(NONCE_SIZE);
    const header = encodeEnvelopeHeader({ kind, compression, encryption: Encryption.aes256gcm, plaintextLength: plaintext.length, nonce });
    const cipher = createCipheriv('aes-256-gcm', key.encryptionKey, nonce);
    cipher.setAAD(Buffer.concat([header, id]));
    const body = cipher.update(payload);
    const final = cipher.final();
    return Buffer.concat([header, body, final, cipher.getAuthTag()]);
  }

  /**
   * {@link seal} into `out`, which may be the very memory `plaintext` is in (a pack frame is
   * sealed in place in its shared slot, pack-writer.ts): the stored form is written from
   * `out[0]` and its length returned. zstd writes into a buffer this codec reuses and the
   * cipher straight into `out`, so a seal allocates nothing large: the 2 MiB frames of a
   * format 2 backup had cost four fresh buffers each, and the dead ones held tens of MiB per
   * thread until a collection.
   * RangeError when `out` is too small (it needs the plaintext's length plus
   * {@link SEAL_OVERHEAD}).
   */
  sealInto(plaintext: Uint8Array, kind: ObjectKind, id: ObjectId, out: Uint8Array): number {
    let compression: Compression = Compression.none;
    let payload: Uint8Array = plaintext;
    if (this.cctx !== undefined && plaintext.length > 0) {
      const bound = zstdBinding.compressBound(plaintext.length);
      if (this.compressed.length < bound) this.compressed = Buffer.allocUnsafe(bound);
      const written = this.cctx.compress2(this.compressed, plaintext);
      if (written < plaintext.length) {
        compression = Compression.zstd;
        payload = this.compressed.subarray(0, written);
      }
    }
    const key = this.settings.masterKey;
    const nonce = key === null ? undefined : randomBytes(NONCE_SIZE);
    const header = encodeEnvelopeHeader({ kind, compression, encryption: key === null ? Encryption.none : Encryption.aes256gcm, plaintextLength: plaintext.length, nonce });
    const size = header.length + payload.length + (key === null ? 0 : TAG_SIZE);
    if (out.length < size) throw new RangeError(`sealing needs ${size} bytes of output, got ${out.length}`);
    const target = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    if (key === null) {
      copyBytes(target, payload, header.length); // before the header: payload may be `out` itself (overlapping bytes move right)
    } else {
      // Encrypted where it is stored from (native/aead.ts), not through a fresh buffer copied
      // in: a payload in `out` itself (a frame stored raw, in its slot) is moved there first
      // (set moves overlapping bytes right), then encrypted in place.
      const body = target.subarray(header.length, header.length + payload.length);
      const source = payload.buffer === target.buffer ? (copyBytes(body, payload), body) : payload;
      aead.aesGcmSealInto(key.encryptionKey, nonce as Buffer, Buffer.concat([header, id]), source, body, target.subarray(header.length + payload.length, size));
    }
    target.set(header, 0);
    return size;
  }

  /**
   * The plaintext of the object stored under `id`. `name` is used in error messages.
   * `rehash` recomputes the id of the plaintext in an encrypted repository too. With
   * `scratch`, a compressed object is decompressed into a buffer this codec reuses: the
   * plaintext returned is valid only until the next call (verify checks and drops it; not
   * allocating 256 KiB per chunk saves verify's workers a tenth of their time and keeps their
   * memory flat). `unaddressed`: the object is a pack frame or trailer, sealed under the
   * zero id; no id is recomputed. `into`: the plaintext is written there (decompressed
   * straight into it: a restore's frame lands in its shared slot without a copy) and the
   * view of it returned; a plaintext longer than `into` is corrupt.
   */
  open(blob: Uint8Array, kind: ObjectKind, name: string, id: ObjectId, options: { rehash: boolean; scratch?: boolean; unaddressed?: boolean; into?: Uint8Array } = { rehash: true }): Buffer {
    const corrupt = (why: string, cause?: unknown) =>
      new CofferError('E_CORRUPT_OBJECT', `object ${name} is corrupt: ${why}`, { subject: { object: name }, cause });
    const header = decodeEnvelopeHeader(blob, kind, name);
    const bytes = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
    let payload: Buffer;
    if (header.encryption === Encryption.aes256gcm) {
      const key = this.settings.masterKey;
      if (key === null) throw corrupt('encrypted, but the repository is not');
      const tagStart = bytes.length - TAG_SIZE;
      if (tagStart < header.headerLength) throw corrupt('shorter than its header and tag');
      const ciphertext = bytes.subarray(header.headerLength, tagStart);
      // Decrypted straight where the payload is needed (native/aead.ts), not into a fresh,
      // zeroed buffer then copied, as Node's Decipher does.
      const target = this.decryptionTarget(header.compression, ciphertext.length, options);
      const aad = Buffer.concat([bytes.subarray(0, header.headerLength), id]);
      if (!aead.aesGcmOpenInto(key.encryptionKey, header.nonce as Buffer, aad, ciphertext, bytes.subarray(tagStart), target)) throw corrupt('authentication failed');
      payload = target.subarray(0, ciphertext.length);
    } else {
      if (this.settings.masterKey !== null) throw corrupt('not encrypted, but the repository is');
      payload = bytes.subarray(header.headerLength);
    }
    let plaintext: Buffer;
    const into = options.into === undefined ? undefined : Buffer.from(options.into.buffer, options.into.byteOffset, options.into.byteLength);
    if (into !== undefined && header.plaintextLength > into.length) throw corrupt(`${header.plaintextLength} bytes of plaintext, more than the ${into.length} expected at most`);
    if (header.compression === Compression.zstd) {
      try {
        if (into !== undefined) plaintext = into.subarray(0, this.dctx.decompress(into.subarray(0, header.plaintextLength), payload));
        else plaintext = options.scratch === true ? this.decompressIntoScratch(payload, header.plaintextLength) : this.decompressor.decompress(payload);
      } catch (error) {
        throw corrupt('zstd frame does not decode', error);
      }
    } else if (into !== undefined) {
      if (payload.buffer !== into.buffer || payload.byteOffset !== into.byteOffset) copyBytes(into, payload.subarray(0, into.length)); // else decrypted there
      plaintext = into.subarray(0, Math.min(payload.length, into.length));
    } else {
      plaintext = payload;
    }
    if (plaintext.length !== header.plaintextLength) {
      throw corrupt(`${plaintext.length} bytes where the header says ${header.plaintextLength}`);
    }
    // Pack frames and trailers (format 2) are not content-addressed: `id` is zeros, and the
    // caller checks the chunk ids the plaintext names (frame-codec.ts).
    if (options.unaddressed !== true && (options.rehash || header.encryption === Encryption.none)) {
      const actual = this.idOf(plaintext);
      if (actual.length !== id.length || !timingSafeEqual(actual, id)) throw corrupt('content does not match its id');
    }
    return plaintext;
  }

  /**
   * Where {@link open} decrypts a payload of `length` bytes: a compressed one into a buffer
   * reused for that (it is decompressed at once); a stored one, which is the plaintext, into
   * `into` when it has room, else the scratch buffer when the caller takes that, else memory
   * of its own (not zeroed: every byte is written).
   */
  private decryptionTarget(compression: Compression, length: number, options: { scratch?: boolean; into?: Uint8Array }): Buffer {
    if (compression === Compression.zstd) {
      if (this.payloadScratch.length < length) this.payloadScratch = Buffer.allocUnsafeSlow(length);
      return this.payloadScratch;
    }
    if (options.into !== undefined && options.into.length >= length) return Buffer.from(options.into.buffer, options.into.byteOffset, length);
    if (options.scratch === true) {
      if (this.scratch.length < length) this.scratch = Buffer.allocUnsafeSlow(length);
      return this.scratch;
    }
    return Buffer.allocUnsafeSlow(length);
  }

  /**
   * Decompresses `payload` into the scratch buffer, which holds at most `expected` bytes: a
   * frame that decodes to more fails (zstd: destination too small) and so is corrupt.
   */
  private decompressIntoScratch(payload: Buffer, expected: number): Buffer {
    if (this.scratch.length < expected) this.scratch = Buffer.allocUnsafe(expected);
    const written = this.dctx.decompress(this.scratch.subarray(0, expected), payload);
    return this.scratch.subarray(0, written);
  }
}
