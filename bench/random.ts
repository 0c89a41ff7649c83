/**
 * Deterministic randomness, so every run changes the same blocks with the same bytes:
 * {@link Prng} picks positions, {@link ByteStream} produces incompressible data
 * (AES-256-CTR keystream keyed by a label; fast and reproducible).
 *
 * @module
 */
import { createCipheriv, createHash, type Cipher } from 'node:crypto';

/** A small seeded generator (mulberry32) for choosing offsets; not for data. */
export class Prng {
  #state: number;

  /** @param seed any 32-bit integer; the same seed gives the same sequence */
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** Next value, uniform in [0, 2^32). */
  nextU32(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform integer in [0, n), for n up to 2^53. */
  below(n: number): number {
    if (!(n > 0)) throw new RangeError(`below(${n})`);
    const x = this.nextU32() * 2 ** 21 + (this.nextU32() >>> 11); // 53 random bits
    return Math.floor((x / 2 ** 53) * n);
  }
}

/** An endless reproducible stream of random-looking bytes. */
export class ByteStream {
  readonly #cipher: Cipher;

  /** @param label names the stream; different labels give unrelated bytes */
  constructor(label: string) {
    const key = createHash('sha256').update(`coffer-bench:${label}`).digest();
    this.#cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  }

  /** The next `n` bytes of the stream. */
  next(n: number): Buffer {
    return this.#cipher.update(Buffer.alloc(n));
  }
}
