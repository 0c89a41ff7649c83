import { createHash } from 'node:crypto';
import { forEachLimited } from '../../concurrency/index.js';
import { CofferError, isCofferError } from '../../errors/index.js';
import type { Backend } from '../backend/backend.js';
import { decodeDigestRecord, type DigestEntry } from '../format/digest-record.js';
import { fingerprintOf, verifySignature } from '../keys/signing-key.js';
import { DIGESTS_PREFIX } from '../layout.js';

/** What is wrong with one object or record, by backend key. */
export interface StoredProblem {
  key: string;
  problem: 'corrupt' | 'wrong-length' | 'missing' | 'bad-signature' | 'corrupt-record' | 'foreign-signer';
  message: string;
}

/** The expected state of one key, from the newest trusted record that names it. */
export interface RecordedState {
  op: 'stored' | 'deleted';
  length: number;
  /** The SHA-256 as a 32-character binary (latin1) string (a Buffer each costs ~150 bytes more). */
  sha256: string | null;
  /** The record (`digests/…`) that set it. */
  record: string;
  /** Set by the checker when the key was listed. */
  seen: boolean;
}

/**
 * The digest records of a repository, checked and replayed (docs/repository-format.md §18):
 * a record counts when its name is the SHA-256 of its bytes, it parses, its signer is
 * `publicKey` and its signature checks; the others are told to `onRejected` and ignored.
 * Trusted records are replayed in order of (time, record id), so each key's state is that of
 * the newest record naming it. {@link update} can be called again to take in records written
 * since (only those are read).
 */
export class DigestState {
  readonly expected = new Map<string, RecordedState>();
  /** Trusted records so far. */
  records = 0;
  /** The newest trusted record's time, unix ms. */
  newestMs: number | null = null;
  bytesRead = 0;
  private readonly known = new Set<string>();

  constructor(
    private readonly backend: Backend,
    private readonly publicKey: Buffer,
    private readonly options: { concurrency: number; signal?: AbortSignal | undefined; onRejected: (problem: StoredProblem) => void; onRecord?: () => void },
  ) {}

  /** Reads the records not read yet and replays the trusted ones; returns the keys they name. */
  async update(): Promise<Set<string>> {
    const keys: string[] = [];
    for await (const entry of this.backend.list(DIGESTS_PREFIX)) if (!this.known.has(entry.key)) keys.push(entry.key);
    const accepted: { id: string; timeMs: number; entries: DigestEntry[] }[] = [];
    await forEachLimited(keys, this.options.concurrency, async (key) => {
      if (this.options.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'interrupted while reading the digest records');
      this.known.add(key);
      const record = await this.read(key);
      if (record !== null) accepted.push({ id: key, ...record });
    });
    accepted.sort((a, b) => a.timeMs - b.timeMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const named = new Set<string>();
    for (const record of accepted) {
      for (const entry of record.entries) {
        named.add(entry.key);
        const seen = this.expected.get(entry.key)?.seen ?? false;
        this.expected.set(
          entry.key,
          entry.op === 'stored'
            ? { op: 'stored', length: entry.length, sha256: entry.sha256.toString('binary'), record: record.id, seen }
            : { op: 'deleted', length: 0, sha256: null, record: record.id, seen },
        );
      }
    }
    return named;
  }

  /** A record's entries if it is trusted, else null (and told to onRejected). */
  private async read(key: string): Promise<{ timeMs: number; entries: DigestEntry[] } | null> {
    const reject = (problem: StoredProblem['problem'], message: string) => {
      this.options.onRejected({ key, problem, message: `${message}: its entries are ignored` });
      return null;
    };
    let bytes: Buffer;
    try {
      bytes = await this.backend.get(key);
    } catch (error) {
      if (isCofferError(error) && error.code === 'E_MISSING_OBJECT') return null; // deleted since listed
      throw error;
    }
    this.bytesRead += bytes.length;
    if (createHash('sha256').update(bytes).digest('hex') !== key.slice(DIGESTS_PREFIX.length)) {
      return reject('corrupt-record', 'its bytes do not hash to its name: the record was altered or damaged');
    }
    let record;
    try {
      record = decodeDigestRecord(bytes, key);
    } catch (error) {
      if (!isCofferError(error)) throw error;
      return reject('corrupt-record', error.message);
    }
    if (!record.signer.equals(this.publicKey)) return reject('foreign-signer', `signed by key ${fingerprintOf(record.signer)}, not the repository's`);
    if (!verifySignature(this.publicKey, record.signed, record.signature)) return reject('bad-signature', 'its signature does not check: the record was tampered with');
    this.records++;
    if (this.newestMs === null || record.timeMs > this.newestMs) this.newestMs = record.timeMs;
    this.options.onRecord?.();
    return { timeMs: record.timeMs, entries: record.entries };
  }
}
