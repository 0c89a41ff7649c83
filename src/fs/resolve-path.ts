import { CofferError } from '../errors/index.js';
import { printableName, unescapeName } from '../names/index.js';
import type { Filesystem, FsNode } from './filesystem.js';

/** Symlinks followed while resolving one path, as Linux allows (MAXSYMLINKS). */
const MAX_SYMLINKS = 40;
/** Components in one path, symlink expansions included: bounds work on hostile links. */
const MAX_COMPONENTS = 4096;

/** A node found by path, with the path that names it inside the filesystem (`/a/b`). */
export interface ResolvedNode {
  node: FsNode;
  path: string;
}

/**
 * Finds the node at `path` (absolute inside the filesystem; `.` and `..` allowed, `..` of
 * the root is the root). Symlinks in the middle are followed inside this filesystem, as the
 * guest would see them (an absolute target starts again at this filesystem's root); the last
 * component is followed only when `followLast`. Names match case-insensitively on
 * filesystems that do. A component that holds escapes as listings print names
 * (`printableName`: `\xNN` for a byte that is not UTF-8 or a control character, `\\` for a
 * backslash) is looked up unescaped first, then as typed: what `ls` printed always finds the
 * entry it listed (a raw `caf\xe9` before a name holding the text `caf\xe9`, which lists as
 * `caf\\xe9`), and a name with a lone backslash (`a\b`, `C:\x`) is found as typed. Throws
 * `E_PATH_NOT_FOUND` for a missing component or a path through a non-directory, and for link
 * loops.
 */
export async function resolvePath(fs: Filesystem, path: string, options: { followLast?: boolean } = {}): Promise<ResolvedNode> {
  const root = await fs.root();
  const notFound = (why: string): CofferError => new CofferError('E_PATH_NOT_FOUND', `${path}: ${why}`, { subject: { path } });
  let pending = splitPath(path);
  let stack: { node: FsNode; name: string }[] = [];
  let links = 0;
  let steps = 0;
  while (pending.length > 0) {
    if (++steps > MAX_COMPONENTS) throw notFound('too many path components (symlink loop?)');
    let name = pending.shift() as string;
    if (name === '.') continue;
    if (name === '..') {
      stack.pop();
      continue;
    }
    const parent = stack.at(-1)?.node ?? root;
    if (parent.type !== 'directory') throw notFound(`${printableName(joinPath(stack.map((s) => s.name)))} is not a directory`);
    const unescaped = unescapeName(name);
    let child = unescaped !== undefined ? await lookupChild(fs, parent, unescaped) : undefined;
    if (child !== undefined) name = unescaped as string;
    else child = await lookupChild(fs, parent, name);
    if (child === undefined) throw notFound(`no ${printableName(unescaped ?? name)} in ${printableName(joinPath(stack.map((s) => s.name)))}`);
    const isLast = pending.length === 0;
    if (child.type === 'symlink' && (!isLast || options.followLast)) {
      if (++links > MAX_SYMLINKS) throw notFound('too many levels of symbolic links');
      const target = await fs.readlink(child);
      if (target.startsWith('/')) stack = [];
      pending = [...splitPath(target), ...pending];
      continue;
    }
    stack.push({ node: child, name });
  }
  return { node: stack.at(-1)?.node ?? root, path: joinPath(stack.map((s) => s.name)) };
}

/** One child of a directory by name, through the filesystem's index when it has one. */
export async function lookupChild(fs: Filesystem, directory: FsNode, name: string): Promise<FsNode | undefined> {
  if (fs.lookup !== undefined) return fs.lookup(directory, name);
  const wanted = fs.caseInsensitive ? name.toLowerCase() : name;
  let folded: FsNode | undefined;
  for (const entry of await fs.readdir(directory)) {
    if (entry.name === name && entry.node !== undefined) return entry.node;
    if (fs.caseInsensitive && folded === undefined && entry.name.toLowerCase() === wanted) folded = entry.node;
  }
  return folded;
}

function splitPath(path: string): string[] {
  return path.split('/').filter((part) => part !== '');
}

function joinPath(names: string[]): string {
  return `/${names.join('/')}`;
}
