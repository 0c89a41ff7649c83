import { ChunksById } from '../chunks-by-id.js';
import { getFileTree } from '../file-trees.js';
import { decodeFileTree, type FileTree } from '../format/file-tree.js';
import { treeKey } from '../layout.js';
import type { Repository } from '../repository.js';

/**
 * The file trees of one side of a sync, read by id (a copy's trees, copy-file-trees.ts; a
 * heal's, heal-file-copies.ts), whichever the format: format 1 an object under `trees/`,
 * format 2 a chunk in a pack found through the index segments, by `byId` when given (the
 * transfer's reader of that side) or else a reader of its own, so that its frame cache and
 * byte count are not another reader's (its index is the one {@link ChunksById} shares while
 * the segments do not change). Each tree is opened and validated: `E_MISSING_OBJECT`,
 * `E_CORRUPT_OBJECT`. The stored bytes read are told to `count`: with a shared reader, the
 * bytes it fetched since this reader last counted, the other users' included.
 */
export class TreeReader {
  private readonly byId: ChunksById | undefined;
  private counted = 0;

  constructor(
    private readonly repo: Repository,
    private readonly count: (bytes: number) => void,
    byId?: ChunksById,
  ) {
    // Trees are opened on this thread, as a backup does (file-trees.ts): it decodes them anyway.
    this.byId = repo.config.version === 2 ? (byId ?? new ChunksById(repo, { framesOnMainThread: true })) : undefined;
    this.counted = this.byId?.fetched.bytes ?? 0;
  }

  async read(id: string): Promise<FileTree> {
    const byId = this.byId;
    if (byId === undefined) {
      const stored = await this.repo.backend.get(treeKey(id));
      this.count(stored.length);
      return getFileTree(this.repo, id, stored);
    }
    try {
      return decodeFileTree(await byId.read(Buffer.from(id, 'hex')), `tree ${id} of ${this.repo.location}`);
    } finally {
      // From the reader's total: reads run concurrently, a delta per call would count others' frames.
      this.count(byId.fetched.bytes - this.counted);
      this.counted = byId.fetched.bytes;
    }
  }
}
