import { CofferError, isCofferError } from '../errors/index.js';
import { readRange } from './backend/read-range.js';
import { DeadCopies } from './dead-copies.js';
import { ObjectKind } from './format/envelope.js';
import { IndexSegment } from './format/index-segment.js';
import { decodeTrailer, PACK_FOOTER_SIZE, trailerRange, UNADDRESSED_ID, type PackTrailer } from './format/pack.js';
import type { IdPrefixSet } from './id-prefix-set.js';
import { idFromKey, packKey, PACKS_PREFIX, SEGMENTS_PREFIX, segmentKey } from './layout.js';
import { lockedBackendOf } from './lock/locked-backend.js';
import { lockedUntil } from './lock/locked-until.js';
import type { Repository } from './repository.js';

/**
 * Defaults of the repacking prune, each with its reason.
 * - repackThreshold 0.2: a pack is rewritten once a fifth of its chunks' bytes are unused.
 *   Rewriting a pack that is 80 % live copies 4 bytes to free 1; at 10 % it would copy 9 (and
 *   every prune after a small forget would rewrite most packs); at 50 % half the space of a
 *   pack could stay wasted for ever. restic's `--max-unused` default (5 % of the whole
 *   repository) repacks more eagerly and pays for it in upload volume.
 */
export const REPACK_DEFAULTS = { repackThreshold: 0.2 } as const;

/** What prune decided for one pack. */
export interface PackDecision {
  key: string;
  /** 64 hex. */
  id: string;
  size: number;
  /** `delete`: no chunk of it is used; `repack`: its used chunks are copied into new packs, then it is deleted. */
  action: 'delete' | 'repack';
  chunks: number;
  /** Used chunks, less its dead copies (dead-copies.ts): what a repack copies, at most. */
  liveChunks: number;
  /** Plaintext bytes of its chunks, and of the used ones (less its dead copies). */
  bytes: number;
  liveBytes: number;
  /**
   * Copies of quarantined chunks that are dead here (their frame does not open, and another pack
   * holds a good copy or no snapshot uses the chunk): dropped, never copied.
   */
  deadCopies: number;
  /** Named by an index segment (false: left by a crashed backup or an interrupted prune). */
  named: boolean;
}

/** The plan of a format 2 prune: what happens to each pack. */
export interface PackPlan {
  /** Packs listed. */
  packs: number;
  /**
   * Packs kept as they are, by id (hex): their chunks stay where they are. The sweep adds the
   * packs it was to change but kept (no room for their copy, a frame that does not open), so
   * that after it this is every old pack still stored.
   */
  kept: Set<string>;
  /** The stored bytes of the packs in {@link kept}: what stays of the old packs. */
  keptBytes: number;
  /** Packs deleted or repacked, in listing order. */
  changes: PackDecision[];
  /** Packs whose trailer does not read: kept as they are (salvage's job), with why. */
  unreadable: { pack: string; message: string }[];
  /**
   * Packs to delete or repack that hold dead copies of quarantined chunks (dead-copies.ts), by
   * id (hex), each with those chunks (hex): the sweep never copies them (their frame does not
   * open), the good copy another pack holds stays.
   */
  deadCopies: Map<string, ReadonlySet<string>>;
  /**
   * What the plan learned of the quarantined ids' copies (every copy the trailers list, and
   * which of them read): after the sweep, prune retires the markers of the ids whose damaged
   * copies are gone (quarantine-retire.ts) without reading those frames again.
   */
  copies: DeadCopies;
  /** Packs named by the index segments (hex). */
  named: Set<string>;
  segments: number;
  /**
   * Packs prune would delete or repack but Object Lock keeps: the pack, or an index segment
   * that names it, is locked until `until`. Kept as they are; a later prune takes them.
   */
  locked: { pack: string; until: Date }[];
  /**
   * Packs the snapshots' entries name that are not stored (hex): removed by an earlier prune
   * (one older than the prune generation writes no record of them) or lost. The sweep records
   * them with the packs it removes (pack-removals.ts), so that incrementals stop copying
   * those stale entries too.
   */
  missing: string[];
}

/**
 * Plans the pack sweep of a format 2 prune (reads only). `live` holds the ids every snapshot
 * uses (the mark), `hinted` the packs their index entries name. Each pack's trailer says
 * which chunks it holds (two ranged reads); a pack is
 * - deleted when none of its chunks is used, or when neither a segment nor a snapshot names it
 *   and none of its chunks is used (a crashed backup's packs);
 * - repacked when the unused share of its chunks' bytes reaches `threshold`, and always when no
 *   segment names it but it holds used chunks (an interrupted prune's or a lost segment's:
 *   the copy goes into a pack a segment names, unless another kept pack has the chunk);
 * - repacked (or deleted, when nothing else of it is used), whatever its unused share, when it
 *   holds a dead copy of a quarantined chunk: one in a frame that does not open while another
 *   stored pack holds the chunk in a frame that does (dead-copies.ts; after verify found the
 *   frame damaged and a backup stored its chunks again), or while no snapshot uses the chunk.
 *   A dead copy counts as unused and is never copied (`deadCopies`), so the damaged frame goes
 *   with its pack, the repository is clean again, and the chunk's quarantine marker can be
 *   retired (quarantine-retire.ts): a damaged copy the index names keeps its marker, and with
 *   it the frame's read at every prune, however full the pack. A damaged copy of a used chunk
 *   with no good one elsewhere stays used: its pack is kept, or reported unreadable by the
 *   sweep (salvage's job), never lost. Only quarantined ids (damage.ts) are checked: a
 *   repository verify never found damaged pays one listing; each frame holding a quarantined
 *   id is read once;
 * - kept otherwise.
 * Refuses (`E_REPO_DAMAGED`) when an index segment cannot be read: the packs it names are
 * unknown, and one may hold the only good copy of a chunk a damaged pack lost.
 *
 * Memory: the pack ids (a few per GB) and one trailer or segment at a time (and the chunk
 * index when a frame holding a quarantined id does not open).
 */
export async function planPacks(repo: Repository, live: IdPrefixSet, hinted: ReadonlySet<string>, options: { threshold: number; onPack?: (done: number) => void }): Promise<PackPlan> {
  const namers = await packNamers(repo);
  const deadCopies = await DeadCopies.of(repo);
  const plan: PackPlan = { packs: 0, kept: new Set(), keptBytes: 0, changes: [], unreadable: [], deadCopies: new Map(), copies: deadCopies, named: new Set(namers.keys()), segments: 0, locked: [], missing: [] };
  const lockOf = lockCheck(repo, namers);
  /** Plans `decision`, unless Object Lock keeps the pack or a segment naming it (then kept, and false). */
  const change = async (decision: PackDecision): Promise<boolean> => {
    const until = await lockOf(decision.id);
    if (until === null) {
      plan.changes.push(decision);
      return true;
    }
    plan.locked.push({ pack: decision.key, until });
    plan.kept.add(decision.id);
    return false;
  };
  for await (const _ of repo.backend.list(SEGMENTS_PREFIX)) plan.segments++;
  const sizes = new Map<string, number>();
  for await (const entry of repo.backend.list(PACKS_PREFIX)) {
    const id = idFromKey(entry.key);
    if (id === null) continue;
    plan.packs++;
    sizes.set(id, entry.size);
    options.onPack?.(plan.packs);
    const named = plan.named.has(id);
    let trailer: PackTrailer;
    try {
      trailer = await readTrailer(repo, entry.key, entry.size);
    } catch (error) {
      if (!isCofferError(error, 'E_CORRUPT_OBJECT') && !isCofferError(error, 'E_MISSING_OBJECT')) throw error;
      if (named || hinted.has(id)) {
        plan.unreadable.push({ pack: entry.key, message: error.message });
        plan.kept.add(id);
      } else await change({ key: entry.key, id, size: entry.size, action: 'delete', chunks: 0, liveChunks: 0, bytes: 0, liveBytes: 0, deadCopies: 0, named });
      continue;
    }
    const dead = await deadCopies.inPack(id, trailer, live);
    let liveChunks = 0;
    let bytes = 0;
    let liveBytes = 0;
    for (const chunk of trailer.chunks) {
      bytes += chunk.length;
      if (live.has(chunk.id) && (dead.size === 0 || !dead.has(chunk.id.toString('hex')))) {
        liveChunks++;
        liveBytes += chunk.length;
      }
    }
    const decision = { key: entry.key, id, size: entry.size, chunks: trailer.chunks.length, liveChunks, bytes, liveBytes, deadCopies: dead.size, named };
    let changed = true;
    if (liveChunks === 0) changed = await change({ ...decision, action: 'delete' });
    else if (!named || dead.size > 0 || (bytes - liveBytes) / bytes >= options.threshold) changed = await change({ ...decision, action: 'repack' });
    else plan.kept.add(id);
    if (changed && dead.size > 0) plan.deadCopies.set(id, dead);
  }
  // A pack holding the good copy of a dead one is never deleted unread: its trailer lists that
  // used chunk, so it is kept or repacked; should its trailer disagree with the segments, it stays.
  for (const decision of plan.changes.filter((c) => c.action === 'delete' && deadCopies.goodPacks.has(c.id))) {
    plan.changes.splice(plan.changes.indexOf(decision), 1);
    plan.kept.add(decision.id);
    plan.deadCopies.delete(decision.id);
  }
  for (const id of plan.kept) plan.keptBytes += sizes.get(id) ?? 0;
  const stored = new Set([...plan.kept, ...plan.changes.map((c) => c.id)]);
  plan.missing = [...hinted].filter((pack) => !stored.has(pack));
  return plan;
}

/** The packs the index segments name (hex), each with the segments (hex) that name it. `E_REPO_DAMAGED` when a segment does not read. */
async function packNamers(repo: Repository): Promise<Map<string, string[]>> {
  const named = new Map<string, string[]>();
  for await (const entry of repo.backend.list(SEGMENTS_PREFIX)) {
    const hex = idFromKey(entry.key);
    if (hex === null) continue;
    let segment: IndexSegment;
    try {
      segment = await readSegment(repo, hex);
    } catch (error) {
      if (isCofferError(error, 'E_MISSING_OBJECT')) continue; // removed meanwhile (repair --index)
      if (!isCofferError(error, 'E_CORRUPT_OBJECT')) throw error;
      throw new CofferError('E_REPO_DAMAGED', `prune refuses to run: index segment ${entry.key} does not read (${error.message}); run 'coffer repair --index' first`, { subject: { repository: repo.location, object: entry.key } });
    }
    for (let i = 0; i < segment.count; i++) {
      const pack = segment.entryAt(i).subarray(32, 64).toString('hex');
      const namers = named.get(pack);
      if (namers === undefined) named.set(pack, [hex]);
      else if (namers.at(-1) !== hex) namers.push(hex);
    }
  }
  return named;
}

/**
 * With Object Lock, until when a pack must stay: the latest retention of the pack and of the
 * segments that name it (a segment that cannot be deleted or rewritten away must never name a
 * pack that is gone: a later backup would deduplicate against it). Null when nothing stops
 * the change now, or without a lock. One HEAD per object, segments asked once.
 */
function lockCheck(repo: Repository, namers: ReadonlyMap<string, string[]>): (pack: string) => Promise<Date | null> {
  const segmentUntil = new Map<string, Promise<Date | null>>();
  return async (pack) => {
    if (lockedBackendOf(repo) === undefined) return null;
    let latest = await lockedUntil(repo, packKey(pack));
    for (const segment of namers.get(pack) ?? []) {
      let until = segmentUntil.get(segment);
      if (until === undefined) segmentUntil.set(segment, (until = lockedUntil(repo, segmentKey(segment))));
      const date = await until;
      if (date !== null && (latest === null || date > latest)) latest = date;
    }
    return latest;
  };
}

/** A segment, opened and parsed. */
export async function readSegment(repo: Repository, hex: string): Promise<IndexSegment> {
  const key = segmentKey(hex);
  const blob = await repo.backend.get(key);
  const { plaintext } = await repo.pool.open(blob, { kind: ObjectKind.indexSegment, name: key, id: Buffer.from(hex, 'hex'), rehash: false });
  return IndexSegment.decode(plaintext as Buffer, key);
}

/** A pack's trailer: its last 8 bytes, then the trailer they locate, opened and parsed. */
export async function readTrailer(repo: Repository, key: string, size: number): Promise<PackTrailer> {
  if (size < PACK_FOOTER_SIZE) throw new CofferError('E_CORRUPT_OBJECT', `pack ${key} is corrupt: ${size} bytes`, { subject: { object: key } });
  const footer = await readRange(repo.backend, key, size - PACK_FOOTER_SIZE, PACK_FOOTER_SIZE);
  const range = trailerRange(footer, size, key);
  const sealed = await readRange(repo.backend, key, range.offset, range.length);
  return decodeTrailer(repo.codec.open(sealed, ObjectKind.packTrailer, key, UNADDRESSED_ID, { rehash: false, unaddressed: true }), size, key);
}
