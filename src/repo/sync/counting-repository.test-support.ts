/**
 * A repository opened through a backend that counts what the tests of sync's healing must
 * prove was not read: data objects (chunks/, packs/, format 1 trees/) and index segments.
 */
import { ForwardingBackend, LocalBackend, openRepository, type Repository } from '../index.js';

export class CountingBackend extends ForwardingBackend {
  dataReads = 0;
  segmentReads = 0;
  override get(key: string): Promise<Buffer> {
    this.count(key);
    return super.get(key);
  }
  override getRange(key: string, offset: number, length: number, into?: Uint8Array): Promise<Buffer> {
    this.count(key);
    return super.getRange(key, offset, length, into);
  }
  override has(key: string): Promise<boolean> {
    this.count(key);
    return super.has(key);
  }
  private count(key: string): void {
    if (key.startsWith('chunks/') || key.startsWith('packs/') || key.startsWith('trees/')) this.dataReads++;
    if (key.startsWith('segments/')) this.segmentReads++;
  }
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
