import { createHash } from 'node:crypto';

/**
 * The SHA-256 of a buffer about to be put, when its writer already computed it, so that the
 * layers below do not hash the same bytes again on the main thread.
 *
 * Why: a format 2 pack (8 MiB) is named by the SHA-256 of its bytes, computed on a codec
 * worker; the digest-recording wrapper then hashed it again for `verify --stored`, and the S3
 * backend a third time for its signed `x-amz-content-sha256`. Measured 2026-11-26 on the
 * offsite benchmark at scale 0.1 (`--cpu-prof` of `coffer backup` to Ceph RGW): the two
 * main-thread passes were 145 ms of the backup's 960 ms of main-thread work (~1.5 s at
 * scale 1).
 *
 * Contract: {@link rememberSha256} is called by the writer with the digest of exactly these
 * bytes, and nobody changes them while the put runs (a pack's buffer is reused only after its
 * put settles, pack-writer.ts). The digest is tied to the buffer object (a WeakMap: nothing is
 * kept once the buffer is gone), so every wrapper that passes the same object down sees it;
 * one that copies the bytes simply hashes them. A wrong digest cannot pass unnoticed: the S3
 * gateway checks the body against `x-amz-content-sha256` and refuses the put
 * (`XAmzContentSHA256Mismatch`), and `verify --stored` rehashes every object it reads.
 */
const known = new WeakMap<Uint8Array, Buffer>();

/** Records that `data` hashes to `sha256` (32 bytes), for the puts of exactly this buffer. */
export function rememberSha256(data: Uint8Array, sha256: Buffer): void {
  if (sha256.length !== 32) throw new RangeError(`a SHA-256 digest has 32 bytes, not ${sha256.length}`);
  known.set(data, sha256);
}

/** The SHA-256 of `data`: the remembered one, or computed now. */
export function sha256Of(data: Uint8Array): Buffer {
  return known.get(data) ?? createHash('sha256').update(data).digest();
}
