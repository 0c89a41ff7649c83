import { CofferError } from '../../errors/index.js';
import { OutputStream } from '../../disk/index.js';
import { resolvePath, walkTree, type Filesystem, type FsDirEntry, type FsNode, type ResolvedNode } from '../../fs/index.js';
import { printableName, printableText, withNameBytes } from '../../names/index.js';
import { resolveSnapshot } from '../../repo/index.js';
import { extractTree, globToRegExp, openSnapshotFilesystems, tarTree, type BrowsableVolume, type SnapshotFilesystems, type TreeReport } from '../../restore/index.js';
import { withRepository, type CommandContext, type RepositoryOptions } from '../context.js';
import { refuseInsideRepository } from '../inside-repository.js';
import { ExitCode } from '../exit-codes.js';
import { formatBytes, formatTable } from '../format.js';

export interface FilesCommandOptions extends RepositoryOptions {
  disk?: string;
  long?: boolean;
  to?: string;
  tar?: boolean;
  overwrite?: boolean;
  /** get: owners by their recorded ids, names ignored (--to), no names in the headers (--tar); ls -l: ids, not names. */
  numericOwner?: boolean;
  name?: string;
  stats?: boolean;
}

const ACTIONS = ['ls', 'cat', 'get', 'find'] as const;

/**
 * `coffer files SNAPSHOT [ls|cat|get|find] [VOLUME:/PATH...]`: browse a snapshot's volumes and
 * files straight from the repository, reading only the chunks that hold what is asked for.
 */
export async function filesCommand(reference: string, action: string | undefined, targets: string[], options: FilesCommandOptions, context: CommandContext): Promise<number> {
  if (action !== undefined && !(ACTIONS as readonly string[]).includes(action)) {
    throw new CofferError('E_USAGE', `unknown action ${action}: use ls, cat, get or find (or none to list the volumes)`);
  }
  if (action !== undefined && action !== 'ls' && targets.length === 0) throw new CofferError('E_USAGE', `${action} needs VOLUME:/PATH (volumes: coffer files SNAPSHOT), or /PATH in a file snapshot`);
  if (action !== 'get' && action !== undefined && targets.length > 1) throw new CofferError('E_USAGE', `${action} takes one VOLUME:/PATH`);
  if (action === 'get' && (options.to === undefined) === (options.tar !== true)) throw new CofferError('E_USAGE', 'get needs --to DIR, or --tar to stream a tar archive to stdout');
  if (action !== 'get' && action !== 'ls' && options.numericOwner === true) throw new CofferError('E_USAGE', '--numeric-owner goes with ls and get');
  if (action === 'find' && options.name === undefined) throw new CofferError('E_USAGE', 'find needs --name GLOB');
  return withRepository(options, context, async (repo) => {
    if (action === 'get' && options.to !== undefined) await refuseInsideRepository(repo.location, options.to, '--to');
    const snapshot = await resolveSnapshot(repo, reference);
    const browse = await openSnapshotFilesystems(repo, snapshot, options.disk !== undefined ? { disk: options.disk } : {});
    try {
      // No action lists the volumes; in a file snapshot, whose files are its one volume, that volume's `/`.
      const code = action === undefined && browse.defaultVolume === undefined ? await listVolumes(await browse.volumes(), options, context) : await runAction(browse, action ?? 'ls', targets, options, context);
      if (options.stats) {
        const fetched = browse.fetched();
        const line = options.json ? JSON.stringify({ type: 'stats', chunksFetched: fetched.chunks, bytesFetched: fetched.bytes }) : `read ${fetched.chunks} chunks (${formatBytes(fetched.bytes)}) from the repository`;
        context.stderr.write(`${line}\n`);
      }
      return code;
    } finally {
      await browse.close();
    }
  });
}

/**
 * `get`: a tar stream on stdout, or the files written into `--to`, owners by name where the
 * filesystem records names (a file snapshot) unless `--numeric-owner`.
 */
function getFiles(fs: Filesystem, sources: ResolvedNode[], options: FilesCommandOptions, context: CommandContext): Promise<TreeReport> {
  const numericOwner = options.numericOwner === true;
  return options.tar
    ? tarTree(fs, sources, context.stdout, { signal: context.signal, numericOwner })
    : extractTree(fs, sources, { to: options.to as string, overwrite: options.overwrite === true, numericOwner, signal: context.signal });
}

async function listVolumes(volumes: BrowsableVolume[], options: FilesCommandOptions, context: CommandContext): Promise<number> {
  const rows = volumes.map((v) => {
    const found = v.onDisk?.volume;
    return {
      disk: v.disk,
      volume: v.name,
      kind: v.kind,
      size: v.size,
      ...(v.offset !== null ? { offset: v.offset } : {}),
      type: v.type,
      filesystem: v.filesystem ?? (found?.encrypted !== undefined ? `${found.encrypted} (encrypted)` : found?.lvmPhysicalVolume !== undefined ? 'LVM2 PV' : null),
      label: v.label,
      ...(v.uuid !== null && v.onDisk?.filesystem !== undefined ? { uuid: v.uuid } : {}),
      notes: [...(found?.warnings ?? []), ...(v.onDisk?.problem !== undefined ? [v.onDisk.problem.message] : [])],
    };
  });
  if (options.json) {
    context.stdout.write(`${JSON.stringify(rows)}\n`);
  } else if (rows.length === 0) {
    context.stdout.write('no volumes\n');
  } else {
    const table = [['DISK', 'VOLUME', 'SIZE', 'FILESYSTEM', 'LABEL', 'TYPE', 'NOTES']];
    for (const r of rows) table.push([r.disk, r.volume, formatBytes(r.size), r.filesystem ?? '-', r.label, r.type, r.notes.join('; ')]);
    context.stdout.write(`${formatTable(table)}\n`);
  }
  return 0;
}

/**
 * ls, cat, get or find on `VOLUME:/PATH` targets; a path without a volume (`/etc`, `:/etc`) is
 * in the snapshot's default volume (a file snapshot's files), and no target is its `/`.
 */
async function runAction(browse: SnapshotFilesystems, action: string, targets: string[], options: FilesCommandOptions, context: CommandContext): Promise<number> {
  if (targets.length === 0 && browse.defaultVolume === undefined) throw new CofferError('E_USAGE', `${action} needs VOLUME:/PATH (volumes: coffer files SNAPSHOT)`);
  const parsed = (targets.length > 0 ? targets : [':/']).map((t) => parseTarget(t, browse.defaultVolume));
  const volumeName = parsed[0]?.volume as string;
  if (parsed.some((p) => p.volume !== volumeName)) throw new CofferError('E_USAGE', 'get takes paths of one volume at a time');
  const fs = await browse.filesystem(volumeName);
  if (fs.notice !== undefined) context.stderr.write(`coffer: warning: volume ${volumeName}: ${fs.notice}\n`);
  const first = parsed[0]?.path as string;
  switch (action) {
    case 'ls':
      return listDirectory(fs, first, options, context);
    case 'cat': {
      const { node } = await resolvePath(fs, first, { followLast: true });
      if (node.type !== 'file') throw new CofferError('E_PATH_NOT_FOUND', `${first} is a ${node.type}, not a file`);
      return catFile(fs, node, first, context);
    }
    case 'get': {
      const sources = [];
      for (const p of parsed) sources.push(await resolvePath(fs, p.path));
      const report = await getFiles(fs, sources, options, context);
      return reportExtraction(report, options, context, options.tar ? 'archived' : `restored to ${printableName(options.to ?? '')}`);
    }
    default:
      return findFiles(fs, first, options, context);
  }
}

/**
 * `VOLUME:/PATH` → its parts (`vg0/root:/etc` → `vg0/root`, `/etc`; `disk1:p1:/etc`, the
 * API's volume id, → `disk1:p1`, `/etc`; the path defaults to `/`); `/PATH` or `:/PATH` → the
 * default volume's path (a file snapshot's: `/etc/passwd`).
 */
function parseTarget(target: string, defaultVolume: string | undefined): { volume: string; path: string } {
  const beforePath = target.indexOf(':/');
  const colon = target.startsWith('/') ? 0 : beforePath > 0 ? beforePath : target.indexOf(':');
  if (colon <= 0) {
    const path = target.startsWith(':') ? target.slice(1) || '/' : target;
    if (defaultVolume !== undefined && path.startsWith('/')) return { volume: defaultVolume, path };
    throw new CofferError('E_USAGE', defaultVolume !== undefined ? `${target}: give an absolute path in the snapshot, e.g. /etc/passwd` : `${target}: write VOLUME:/PATH, e.g. p1:/etc (volumes: coffer files SNAPSHOT)`);
  }
  const path = target.slice(colon + 1) || '/';
  return { volume: target.slice(0, colon), path: path.startsWith('/') ? path : `/${path}` };
}

async function listDirectory(fs: Filesystem, path: string, options: FilesCommandOptions, context: CommandContext): Promise<number> {
  const { node } = await resolvePath(fs, path, { followLast: true });
  // A file is listed under its name as the filesystem holds it (`caf\xe9` typed finds the bytes 63 61 66 E9), not as typed.
  const entries: FsDirEntry[] = node.type === 'directory' ? await fs.readdir(node) : [{ name: (await resolvePath(fs, path)).path.split('/').pop() as string, node }];
  let damaged = 0;
  const out: object[] = [];
  const rows: string[][] = [];
  for (const entry of entries) {
    if (entry.node === undefined) {
      damaged++;
      context.stderr.write(options.json ? `${JSON.stringify({ type: 'error', code: entry.error?.code, ...withNameBytes('path', entry.name), message: entry.error?.message })}\n` : `coffer: ${printable(entry.name)}: ${printableText(entry.error?.message ?? 'unreadable')}\n`);
      continue;
    }
    const target = entry.node.type === 'symlink' ? await fs.readlink(entry.node).catch(() => '?') : undefined;
    if (options.json) out.push(describe(entry.name, entry.node, target));
    else if (options.long) rows.push(longRow(entry.name, entry.node, target, options.numericOwner === true));
    else context.stdout.write(`${printable(entry.name)}${entry.node.type === 'directory' ? '/' : ''}\n`);
  }
  if (options.json) context.stdout.write(`${JSON.stringify(out)}\n`);
  else if (options.long && rows.length > 0) context.stdout.write(`${formatTable(rows)}\n`);
  return damaged > 0 ? ExitCode.contentUnreadable : 0;
}

/** Writes a file to stdout; a read that fails names the file by its path (readers name inodes and records). */
async function catFile(fs: Filesystem, node: FsNode, path: string, context: CommandContext): Promise<number> {
  const piece = 1 << 20;
  const output = new OutputStream(context.stdout);
  for (let offset = 0; offset < node.size; offset += piece) {
    if (context.signal.aborted) throw new CofferError('E_INTERRUPTED', 'interrupted');
    let bytes: Uint8Array;
    try {
      bytes = await fs.read(node, offset, Math.min(piece, node.size - offset));
    } catch (error) {
      if (!(error instanceof CofferError) || error.message.startsWith(path)) throw error;
      throw new CofferError(error.code, `${printableText(path)}: ${error.message}`, { subject: { ...error.subject, path }, cause: error });
    }
    await output.write(bytes);
  }
  await output.finish();
  return 0;
}

async function findFiles(fs: Filesystem, path: string, options: FilesCommandOptions, context: CommandContext): Promise<number> {
  const pattern = globToRegExp(options.name as string, fs.caseInsensitive);
  const start = await resolvePath(fs, path, { followLast: true });
  const base = start.path === '/' ? [] : start.path.split('/').filter(Boolean);
  const found: object[] = [];
  let damaged = 0;
  for await (const item of walkTree(fs, start.node, base)) {
    if (item.kind === 'error') {
      damaged++;
      context.stderr.write(`coffer: ${printableText(item.error.message)}\n`);
      continue;
    }
    // The start itself counts, as for find(1): `find disk:/etc/passwd --name passwd` prints it.
    if (item.kind === 'leave' || item.path.length === 0) continue;
    const name = item.path.at(-1) as string;
    if (!pattern.test(name)) continue;
    const full = `/${item.path.join('/')}`;
    if (options.json) found.push(describe(full, item.node, undefined));
    else context.stdout.write(`${printable(full)}\n`);
  }
  if (options.json) context.stdout.write(`${JSON.stringify(found)}\n`);
  return damaged > 0 ? ExitCode.contentUnreadable : 0;
}

function reportExtraction(
  report: TreeReport,
  options: FilesCommandOptions,
  context: CommandContext,
  where: string,
): number {
  const out = options.tar ? context.stderr : context.stdout;
  if (options.json) {
    out.write(`${JSON.stringify(jsonReport(report))}\n`);
  } else {
    // Messages name entries as printableName shows them (the core writes them so); the rest of a message is only made safe to print.
    const named = (path: string, message: string): string => (message.startsWith(printable(path)) || message.startsWith(path) ? '' : `${printable(path)}: `);
    for (const p of report.problems) context.stderr.write(`coffer: ${named(p.path, p.message)}${printableText(p.message)}\n`);
    for (const r of report.renamed) {
      const why = r.reason === 'taken' ? ': another entry took that name' : r.reason === 'long' ? ' has a name longer than Linux takes (255 bytes)' : ' has an unsafe name';
      context.stderr.write(`coffer: ${printable(r.path)}${why}: written as ${printable(r.as)}\n`);
    }
    for (const s of report.skipped) context.stderr.write(`coffer: ${printable(s.path)}: ${printableText(s.reason)}\n`);
    out.write(`${where}: ${report.files} files (${formatBytes(report.bytes)}), ${report.directories} folders, ${report.symlinks} symlinks, ${report.hardLinks} hard links${report.problems.length > 0 ? `; ${report.problems.length} entries failed` : ''}\n`);
  }
  if (report.problems.length === 0) return 0;
  // Only the target refused (names that exist, without --overwrite): 4, as a restore; anything read wrong from the backup: 14.
  return report.problems.every((p) => p.code === 'E_TARGET_UNWRITABLE') ? ExitCode.targetUnwritable : ExitCode.contentUnreadable;
}

/** A get report as JSON: each path and renamed name that holds bytes that are not UTF-8 gets its bytes in hex beside it. */
function jsonReport(report: TreeReport): object {
  return {
    ...report,
    skipped: report.skipped.map((s) => ({ ...s, ...withNameBytes('path', s.path) })),
    renamed: report.renamed.map((r) => ({ ...r, ...withNameBytes('path', r.path), ...withNameBytes('as', r.as) })),
    problems: report.problems.map((p) => ({ ...p, ...withNameBytes('path', p.path) })),
  };
}

function describe(name: string, node: FsNode, target: string | undefined): object {
  const iso = (ms: number): string | null => (Number.isFinite(ms) ? new Date(ms).toISOString() : null);
  return {
    ...withNameBytes('name', name),
    type: node.type,
    size: node.size,
    mode: node.mode & 0o7777,
    uid: node.uid,
    gid: node.gid,
    ...(node.user !== undefined ? withNameBytes('user', node.user) : {}),
    ...(node.group !== undefined ? withNameBytes('group', node.group) : {}),
    nlink: node.nlink,
    mtime: iso(node.mtimeMs),
    atime: iso(node.atimeMs),
    ctime: iso(node.ctimeMs),
    birthtime: iso(node.birthtimeMs),
    ...(target !== undefined ? withNameBytes('target', target) : {}),
    ...(node.streams !== undefined && node.streams.length > 0 ? { streams: node.streams } : {}),
    ...(node.attributes !== undefined && node.attributes.length > 0 ? { attributes: node.attributes } : {}),
  };
}

const TYPE_CHAR: Record<string, string> = { file: '-', directory: 'd', symlink: 'l', 'char-device': 'c', 'block-device': 'b', fifo: 'p', socket: 's', unknown: '?' };

/**
 * `ls -l`-style columns: mode, links, owner, group, size, mtime, name (-> target). Owner and
 * group by the names the filesystem records (a file snapshot: the names on the host backed
 * up), else by id (a guest's filesystem: its accounts are not this host's); `-n` as in ls is
 * `--numeric-owner`.
 */
function longRow(name: string, node: FsNode, target: string | undefined, numericOwner: boolean): string[] {
  const m = node.mode;
  const rwx = (shift: number, special: number, char: string): string =>
    `${m & (4 << shift) ? 'r' : '-'}${m & (2 << shift) ? 'w' : '-'}${m & special ? (m & (1 << shift) ? char : char.toUpperCase()) : m & (1 << shift) ? 'x' : '-'}`;
  const mode = `${TYPE_CHAR[node.type] ?? '?'}${rwx(6, 0o4000, 's')}${rwx(3, 0o2000, 's')}${rwx(0, 0o1000, 't')}`;
  const time = Number.isFinite(node.mtimeMs) ? new Date(node.mtimeMs).toISOString().slice(0, 19).replace('T', ' ') : '-';
  const owner = numericOwner || node.user === undefined ? String(node.uid) : printable(node.user);
  const group = numericOwner || node.group === undefined ? String(node.gid) : printable(node.group);
  return [mode, String(node.nlink), owner, group, String(node.size), time, `${printable(name)}${target !== undefined ? ` -> ${printable(target)}` : ''}`];
}

/** A name safe to print on a terminal and unambiguous: control characters and bytes that are not UTF-8 as \xNN, a backslash as \\ (typed back, it finds the entry). */
const printable = printableName;

