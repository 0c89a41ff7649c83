import { CofferError, type ErrorCode } from '../../errors/index.js';
import { walkTree, type Filesystem, type FsNode, type FsStream, type FsXattr, type ResolvedNode } from '../../fs/index.js';
import { printableName } from '../../names/index.js';
import { fitName, safeName } from './safe-name.js';

/** Something that went wrong with one entry; the rest of the extraction goes on. */
export interface EntryProblem {
  /** The entry's path inside the filesystem, as on disk. */
  path: string;
  code: ErrorCode;
  message: string;
}

/** What an extraction or a tar stream held, and every entry it could not hold and why. */
export interface TreeReport {
  files: number;
  directories: number;
  symlinks: number;
  hardLinks: number;
  /** Bytes of file content written (holes excluded when extracting). */
  bytes: number;
  /** Device nodes, FIFOs and sockets are listed here, not created; so are entries whose NTFS alternate data streams were left out, and extended attributes the host refused. */
  skipped: { path: string; reason: string }[];
  /** Entries written under another name. */
  renamed: RenamedEntry[];
  problems: EntryProblem[];
}

/** An entry written under another name (`path` and `as` as names/byte-names.ts decodes bytes). */
export interface RenamedEntry {
  /** The entry's path inside the filesystem. */
  path: string;
  /** The path it was written as, relative to the folder or archive. */
  as: string;
  /** `unsafe`: its name was escaped (safe-name.ts); `long`: it was longer than Linux takes and was shortened; `taken`: another entry of the folder had that name, so a `~N` suffix was added. */
  reason: 'unsafe' | 'long' | 'taken';
}

/** An empty report. */
export function emptyReport(): TreeReport {
  return { files: 0, directories: 0, symlinks: 0, hardLinks: 0, bytes: 0, skipped: [], renamed: [], problems: [] };
}

/**
 * Notes in `report.skipped` the alternate data streams of an entry (NTFS: named $DATA
 * attributes, FsNode.streams) that were left out, in one line naming each: leaving them out
 * without a word would pass for a complete copy. `done` says what was done with the entry
 * ("restored", "archived"). `xattrs`: the extended attributes written with the entry, when
 * the output holds them (a folder, a tar): a stream carried by one of them (`user.NAME`) is
 * not left out, and each other one is named with the reader's reason (too large for an
 * attribute …). Without `xattrs` (a zip has no place for them) every stream is left out.
 */
export function noteStreamsLeftOut(report: TreeReport, path: string, node: FsNode, how: { done: string; xattrs?: readonly FsXattr[] }): void {
  const streams = node.streams ?? [];
  const given = new Set((how.xattrs ?? []).map((x) => x.name));
  const leftOut = streams.filter((s) => s.xattr === undefined || !given.has(s.xattr));
  if (leftOut.length === 0) return;
  const why = (s: FsStream): string => (how.xattrs !== undefined && s.notXattr !== undefined ? `: ${s.notXattr}` : '');
  const list = leftOut.map((s) => `${JSON.stringify(s.name)} (${s.size} bytes${why(s)})`).join(', ');
  const all = leftOut.length === streams.length && node.type === 'file' ? " (only the file's main content)" : '';
  report.skipped.push({ path, reason: `${leftOut.length === 1 ? 'its alternate data stream' : `its ${leftOut.length} alternate data streams`} ${list} not ${how.done}${all}` });
}

/** A walk item with the host-safe relative path it is written to. */
export interface SafeItem {
  kind: 'enter' | 'leave' | 'entry';
  node: FsNode;
  /** The path inside the filesystem (for messages). */
  guestPath: string;
  /** Safe names, relative to the extraction folder: never empty components, `.`, `..` or `/`. */
  hostPath: string[];
  /** Identifies the entry for `skipBelow`: add it when a folder could not be created. */
  walkKey: string;
}

/**
 * Walks each source (as `resolvePath` found it) and yields its entries with host-safe
 * relative paths: a source `/a/b` lands as `b`, the root `/` as its children. Unsafe names
 * are escaped (reported through `renamed`) or refused (reported as problems, with all below
 * them skipped). When escaping makes two names of a directory one (`a/b` escaped to `a%2Fb`
 * beside a file named `a%2Fb`), the later one gets the first free `~N` suffix and is
 * reported through `renamed`: no file is lost for its name. A name the directory holds twice
 * (a damaged directory) is reported and its second entry skipped. A directory the consumer
 * could not create (`skipBelow`) has its children skipped.
 * `names`: `bytes` keeps a name's bytes, UTF-8 or not (names/byte-names.ts), as a folder on
 * Linux and a tar take them; `zip` also escapes what a zip entry name cannot hold
 * ({@link zipName}: bytes that are not UTF-8, backslashes), reported through `renamed`.
 */
export async function* safeWalk(
  fs: Filesystem,
  sources: readonly ResolvedNode[],
  report: { problems: EntryProblem[]; renamed: RenamedEntry[] },
  skipBelow: Set<string>,
  names: 'bytes' | 'zip',
): AsyncIterable<SafeItem> {
  const topNames = new Map<string, string>();
  for (const source of sources) {
    const guestBase = source.path === '/' ? [] : source.path.split('/').filter(Boolean);
    const startPath = guestBase.length === 0 ? [] : [guestBase.at(-1) as string];
    const prefix = guestBase.slice(0, -1);
    const hostByGuest = new Map<string, string[]>();
    const seenIn = new Map<string, Map<string, string>>(); // directory → host name → the guest name that took it
    hostByGuest.set(JSON.stringify([]), []);
    seenIn.set(JSON.stringify([]), topNames);
    for await (const item of walkTree(fs, source.node, startPath)) {
      const guestPath = `/${[...prefix, ...item.path].join('/')}`;
      if (item.kind === 'error') {
        report.problems.push({ path: guestPath, code: item.error.code, message: item.error.message });
        continue;
      }
      if (item.path.length === 0) {
        // The root itself: its children go straight into the folder.
        if (item.kind === 'enter' || item.kind === 'leave') yield { kind: item.kind, node: item.node, guestPath, hostPath: [], walkKey: '[]' };
        continue;
      }
      const parentKey = JSON.stringify(item.path.slice(0, -1));
      const parentHost = hostByGuest.get(parentKey);
      if (parentHost === undefined || skipBelow.has(parentKey)) {
        if (item.kind === 'enter') skipBelow.add(JSON.stringify(item.path));
        continue; // below a refused or failed directory
      }
      const key = JSON.stringify(item.path);
      if (item.kind === 'leave') {
        const hostPath = hostByGuest.get(key);
        const skipped = skipBelow.delete(key);
        hostByGuest.delete(key);
        seenIn.delete(key);
        if (hostPath !== undefined && !skipped) yield { kind: 'leave', node: item.node, guestPath, hostPath, walkKey: key };
        continue;
      }
      const name = item.path.at(-1) as string;
      const safe = safeName(name, names === 'zip');
      if (!safe.ok) {
        report.problems.push({ path: guestPath, code: 'E_FS_CORRUPT', message: `${printableName(guestPath)}: ${safe.reason}; skipped` });
        if (item.kind === 'enter') skipBelow.add(key);
        continue;
      }
      const seen = seenIn.get(parentKey) as Map<string, string>;
      let hostName = safe.name;
      const holder = seen.get(hostName);
      if (holder === name) {
        report.problems.push({ path: guestPath, code: 'E_FS_CORRUPT', message: `${printableName(guestPath)}: a second entry named "${printableName(name)}"; skipped` });
        if (item.kind === 'enter') skipBelow.add(key);
        continue;
      }
      if (holder !== undefined) hostName = freeName(hostName, seen);
      seen.set(hostName, name);
      const hostPath = [...parentHost, hostName];
      if (safe.escaped || safe.shortened || hostName !== safe.name) report.renamed.push({ path: guestPath, as: hostPath.join('/'), reason: hostName !== safe.name ? 'taken' : safe.shortened ? 'long' : 'unsafe' });
      if (item.kind === 'enter') {
        hostByGuest.set(key, hostPath);
        seenIn.set(key, new Map());
      }
      yield { kind: item.kind, node: item.node, guestPath, hostPath, walkKey: key };
    }
  }
}

/** `name~1`, `name~2` … (shortened to fit, see fitName): the first that no entry of the directory took. */
function freeName(name: string, seen: ReadonlyMap<string, string>): string {
  for (let n = 1; ; n++) {
    const candidate = fitName(`${name}~${n}`);
    if (!seen.has(candidate)) return candidate;
  }
}

/** True when a failure belongs to one entry (damage in the backup) rather than to the whole run. */
export function isEntryProblem(error: unknown): error is CofferError {
  return error instanceof CofferError && ['E_FS_CORRUPT', 'E_FS_UNSUPPORTED', 'E_MISSING_OBJECT', 'E_CORRUPT_OBJECT', 'E_PATH_NOT_FOUND', 'E_TARGET_UNWRITABLE'].includes(error.code);
}
