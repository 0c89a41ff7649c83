import { ChunkIndex, PackWriter, type Repository } from '../repo/index.js';

/**
 * Where a format 2 backup's blocks go (docs/repository-format.md, "Format 2"): a block not in
 * the parent is looked up among the chunks this run placed, then in the repository's global
 * chunk index (from the first lookup: the one this process loaded while the repository's
 * segments are the same, ChunkIndex.current), and only then staged as new into the run's
 * {@link PackWriter}. Every answer is a located entry, or a promise of one while the chunk's
 * pack is still being filled.
 *
 * The run's own placements are remembered up to `limit` (200,000 × ~150 bytes ≈ 30 MiB, as
 * v1's KnownChunks); a block seen again after that is stored again, which costs space, never
 * a wrong entry.
 */
export class PackedChunks {
  readonly writer: PackWriter;
  private readonly placed = new Map<string, Promise<Buffer>>();
  private index: Promise<ChunkIndex> | undefined;

  constructor(
    private readonly repo: Repository,
    private readonly limit = 200_000,
    writerOptions: ConstructorParameters<typeof PackWriter>[1] = {},
  ) {
    this.writer = new PackWriter(repo, writerOptions);
  }

  /**
   * The entry of a chunk with this id already stored (or being stored by this run), or
   * undefined. Damaged ids (quarantined by verify) are never found: they are stored again.
   */
  async find(id: Buffer, hex: string, damaged: ReadonlySet<string>): Promise<Placement | undefined> {
    if (damaged.has(hex)) return undefined;
    const mine = this.placed.get(hex);
    if (mine !== undefined) return { pending: mine };
    this.index ??= ChunkIndex.current(this.repo);
    const entry = await (await this.index).lookup(id);
    return entry === undefined ? undefined : { entry };
  }

  /** Stages a new chunk; resolves once `data` is copied, with a promise of its entry. */
  async store(id: Buffer, hex: string, data: Uint8Array): Promise<Placement & { stored: boolean }> {
    const mine = this.placed.get(hex); // the same block content staged meanwhile
    if (mine !== undefined) return { pending: mine, stored: false };
    const { placed, ready } = this.writer.stage(id, data);
    this.placed.set(hex, placed);
    if (this.placed.size > this.limit) this.placed.delete(this.placed.keys().next().value as string);
    await ready;
    return { pending: placed, stored: true };
  }
}

/**
 * A chunk's located entry, known (`entry`) or to come once its pack is stored (`pending`; a
 * promise inside an object, so that awaiting the lookup does not wait for the pack).
 */
export type Placement = { entry: Buffer; pending?: undefined } | { entry?: undefined; pending: Promise<Buffer> };
