import { open, readFile, rename, writeFile, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { CofferError } from '../../errors/index.js';
import { makeFolders } from '../../native/index.js';

/**
 * Who wrote each object under the prefixes the server isolates (access-policy.ts), for one
 * served repository. The server cannot decrypt manifests, so it cannot tell whose snapshot one
 * is: it remembers which token name put it. Kept outside the repository (the repository alone
 * still restores everything; this only decides who may see what through the server), in
 * `STATE_DIR/owners/<repository name>.jsonl`, one JSON object per line, appended and synced:
 *
 * ```
 * {"key":"snapshots/<64 hex>","owner":"web01"}   the object was put by token web01
 * {"key":"leases/<64 hex>","owner":null}          the object was deleted
 * ```
 *
 * The last line for a key wins. An owner is recorded, and synced, *before* the object is
 * stored: a crash in between leaves a line for an absent object (harmless), never an object
 * without its owner (which its agent could then not see). A torn last line (a crash mid-write)
 * is ignored. On load, a file with many more lines than live keys is rewritten compactly
 * (temporary file + rename). One server process per state directory.
 */
export class OwnerIndex {
  private readonly owners = new Map<string, string>();
  private handle: FileHandle | undefined;
  private writing: Promise<void> = Promise.resolve();

  private constructor(private readonly file: string) {}

  /** Loads (creating) the index file. */
  static async open(file: string): Promise<OwnerIndex> {
    const index = new OwnerIndex(file);
    await makeFolders(dirname(file), 0o700);
    let lines = 0;
    const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw new CofferError('E_BACKEND_IO', `cannot read the owner index ${file}: ${error.message}`, { cause: error });
    });
    for (const line of text.split('\n')) {
      if (line === '') continue;
      let record: { key?: unknown; owner?: unknown };
      try {
        record = JSON.parse(line) as typeof record;
      } catch {
        continue; // a torn line from a crash
      }
      if (typeof record.key !== 'string') continue;
      lines++;
      if (typeof record.owner === 'string') index.owners.set(record.key, record.owner);
      else index.owners.delete(record.key);
    }
    if (lines > 2 * index.owners.size + 1000) await index.compact();
    index.handle = await open(file, 'a', 0o600);
    return index;
  }

  /** Who wrote `key`, if it was written through this server by a token. */
  ownerOf(key: string): string | undefined {
    return this.owners.get(key);
  }

  /** Records (durably) that `owner` writes `key`, or that `key` is gone (`null`). */
  async record(key: string, owner: string | null): Promise<void> {
    if (owner === null ? !this.owners.has(key) : this.owners.get(key) === owner) return;
    if (owner === null) this.owners.delete(key);
    else this.owners.set(key, owner);
    const line = `${JSON.stringify({ key, owner })}\n`;
    const handle = this.handle;
    if (handle === undefined) throw new Error('owner index used after close');
    const step = this.writing.then(async () => {
      await handle.write(line);
      await handle.datasync();
    });
    this.writing = step.catch(() => {});
    await step;
  }

  async close(): Promise<void> {
    await this.writing;
    await this.handle?.close();
    this.handle = undefined;
  }

  private async compact(): Promise<void> {
    const temp = `${this.file}.tmp-${randomBytes(6).toString('hex')}`;
    await writeFile(temp, [...this.owners].map(([key, owner]) => `${JSON.stringify({ key, owner })}\n`).join(''), { mode: 0o600 });
    await rename(temp, this.file);
  }
}
