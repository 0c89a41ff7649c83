import { CofferError, isCofferError } from '../../errors/index.js';
import { walkTree, type Filesystem } from '../../fs/index.js';
import { filePieces } from '../files/file-pieces.js';
import { MAX_PROBLEMS_PER_VOLUME, type VolumeCheck } from './report.js';

/** What a walk of one filesystem found. */
export type WalkCounts = Pick<VolumeCheck, 'directories' | 'files' | 'symlinks' | 'bytesRead' | 'problems' | 'problemCount'>;

/**
 * Walks a filesystem from its root and reads every file's content (holes excepted), every
 * symlink's target and every alternate stream, as a restore of each file would. Damage (a
 * directory or inode that does not parse, a block that cannot be read) is listed by path
 * and the walk goes on, so the report names every damaged file, not only the first.
 */
export async function walkAndReadEverything(fs: Filesystem, signal?: AbortSignal): Promise<WalkCounts> {
  const counts: WalkCounts = { directories: 0, files: 0, symlinks: 0, bytesRead: 0, problems: [], problemCount: 0 };
  const problem = (path: string[], error: CofferError): void => {
    counts.problemCount++;
    if (counts.problems.length < MAX_PROBLEMS_PER_VOLUME) counts.problems.push(`/${path.join('/')}: ${error.message}`);
  };
  const attempt = async (path: string[], work: () => Promise<void>): Promise<void> => {
    try {
      await work();
    } catch (error) {
      if (!isCofferError(error) || error.code === 'E_INTERRUPTED') throw error;
      problem(path, error);
    }
  };
  let root;
  try {
    root = await fs.root();
  } catch (error) {
    if (!isCofferError(error)) throw error;
    problem([], error);
    return counts;
  }
  for await (const item of walkTree(fs, root)) {
    if (signal?.aborted) throw new CofferError('E_INTERRUPTED', 'test restore interrupted');
    if (item.kind === 'error') problem(item.path, item.error);
    else if (item.kind === 'enter') counts.directories++;
    else if (item.kind === 'entry') {
      const node = item.node;
      if (node.type === 'symlink') {
        counts.symlinks++;
        await attempt(item.path, async () => void (await fs.readlink(node)));
      } else if (node.type === 'file') {
        counts.files++;
        await attempt(item.path, async () => {
          for await (const piece of filePieces(fs, node, signal)) if ('bytes' in piece) counts.bytesRead += piece.bytes.length;
        });
        for (const stream of node.streams ?? []) {
          const readStream = fs.readStream?.bind(fs);
          if (readStream === undefined) break;
          await attempt([...item.path.slice(0, -1), `${item.path.at(-1) ?? ''}:${stream.name}`], async () => {
            for (let offset = 0; offset < stream.size; offset += 1 << 20) {
              counts.bytesRead += (await readStream(node, stream.name, offset, Math.min(1 << 20, stream.size - offset))).length;
            }
          });
        }
      }
    }
  }
  return counts;
}
