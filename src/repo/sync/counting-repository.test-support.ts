/**
 * A repository opened through a backend that counts what the tests of sync must prove was
 * read, or not: data objects (chunks/, packs/, format 1 trees/), their bytes, and index segments.
 */
import { ForwardingBackend, LocalBackend, openRepository, type Repository } from '../index.js';

export class CountingBackend extends ForwardingBackend {
  dataReads = 0;
  /** The bytes of data objects returned by get and getRange. */
  dataBytes = 0;
  segmentReads = 0;
  override async get(key: string): Promise<Buffer> {
    this.count(key);
    return this.counted(key, await super.get(key));
  }
  override async getRange(key: string, offset: number, length: number, into?: Uint8Array): Promise<Buffer> {
    this.count(key);
    return this.counted(key, await super.getRange(key, offset, length, into));
  }
  private counted(key: string, bytes: Buffer): Buffer {
    if (isData(key)) this.dataBytes += bytes.length;
    return bytes;
  }
  override has(key: string): Promise<boolean> {
    this.count(key);
    return super.has(key);
  }
  private count(key: string): void {
    if (isData(key)) this.dataReads++;
    if (key.startsWith('segments/')) this.segmentReads++;
  }
}

function isData(key: string): boolean {
  return key.startsWith('chunks/') || key.startsWith('packs/') || key.startsWith('trees/');
}

/** A local repository opened through a {@link CountingBackend}. */
export interface CountedRepository {
  repo: Repository;
  dir: string;
  counting: CountingBackend;
  passphrase: string;
}

/** Opens the repository in `dir` counting its reads; `keep` is told of it (to close it after the tests). */
export async function openCounted(dir: string, passphrase: string, keep: (repo: Repository) => Repository): Promise<CountedRepository> {
  const counting = new CountingBackend(new LocalBackend(dir));
  const repo = keep(await openRepository(counting, { passphrase, threads: 1 }));
  return { repo, dir, counting, passphrase };
}
