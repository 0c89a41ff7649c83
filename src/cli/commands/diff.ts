import { once } from 'node:events';
import { CofferError } from '../../errors/index.js';
import { withNameBytes } from '../../names/index.js';
import { resolveSnapshot, type Repository, type Snapshot } from '../../repo/index.js';
import { diffFileSnapshots, diffSnapshotDisks, diffSnapshotVolumes, type DiffProblem, type PathChange, type VolumeDiffSink } from '../../restore/index.js';
import { withRepository, type CommandContext, type RepositoryOptions } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import { formatBytes as formatSize } from '../format.js';
import { changeLine, countsText, disksText, problemLine, snapshotLine, volumeHeader, volumeSummary } from './diff-text.js';

export interface DiffCommandOptions extends RepositoryOptions {
  disk?: string;
  files?: boolean;
}

/**
 * `coffer diff SNAPSHOT_A SNAPSHOT_B`: what changed from A to B. VM snapshots: each disk's
 * changed byte ranges (index pages only), and with `--files` the files of each volume.
 * File snapshots: the paths added, removed and changed. Both must be of one kind (`E_USAGE`
 * otherwise). Changed paths are printed as they are found (with `--json` too: the document is
 * written piece by piece, waiting for a slow reader), so a large diff is never held whole.
 */
export async function diffCommand(referenceA: string, referenceB: string, options: DiffCommandOptions, context: CommandContext): Promise<number> {
  return withRepository(options, context, async (repo) => {
    const a = await resolveSnapshot(repo, referenceA);
    const b = await resolveSnapshot(repo, referenceB);
    if ((a.files === undefined) !== (b.files === undefined)) {
      const kind = (s: Snapshot) => (s.files !== undefined ? 'a file snapshot' : 'a VM snapshot');
      throw new CofferError('E_USAGE', `${a.id.slice(0, 8)} is ${kind(a)} and ${b.id.slice(0, 8)} ${kind(b)}: compare snapshots of one kind`);
    }
    if (a.files !== undefined) {
      if (options.disk !== undefined) throw new CofferError('E_USAGE', '--disk: file snapshots have no disks');
      return fileSnapshots(repo, a, b, options, context);
    }
    const disks = await diffSnapshotDisks(repo, a, b, { ...(options.disk !== undefined ? { disk: options.disk } : {}), signal: context.signal });
    const document = JSON.stringify({ a: snapshotJson(a), b: snapshotJson(b), kind: 'disks', ...disks });
    if (options.files !== true) {
      context.stdout.write(options.json ? `${document}\n` : `${snapshotLine(a, b)}\n\n${disksText(disks)}`);
      return 0;
    }
    context.stdout.write(options.json ? `${document.slice(0, -1)},"volumes":[` : `${snapshotLine(a, b)}\n\n${disksText(disks)}`);
    const results = await diffSnapshotVolumes(repo, a, b, disks, { ...(options.disk !== undefined ? { disk: options.disk } : {}), sink: volumeWriter(options, context), signal: context.signal });
    if (options.json) context.stdout.write(']}\n');
    return problemsExit(results.flatMap((r) => r.problems));
  });
}

/** Prints each volume's comparison as it goes: a header, its changes, its counts (JSON: one element of `volumes` each). */
function volumeWriter(options: DiffCommandOptions, context: CommandContext): VolumeDiffSink {
  const out = context.stdout;
  let volumes = 0;
  let changes = changeWriter(out, options.json === true);
  return {
    start: (info) => {
      changes = changeWriter(out, options.json === true);
      if (options.json) out.write(`${volumes > 0 ? ',' : ''}{${JSON.stringify(info).slice(1, -1)},"changes":[`);
      else out.write(`\n${volumeHeader(info)}\n`);
      volumes += 1;
    },
    change: (change) => changes.write(change),
    end: (result) => {
      if (options.json) {
        const { counts, bytesAdded, bytesRemoved, checks, problems } = result;
        out.write(`],${JSON.stringify({ ...(counts !== undefined ? { counts } : {}), bytesAdded, bytesRemoved, ...(checks !== undefined ? { checks } : {}), problems }).slice(1)}`);
        return;
      }
      for (const p of result.problems) context.stderr.write(`${problemLine({ ...p, path: `${result.volume}:${p.path}` })}\n`);
      if (result.counts !== undefined) out.write(`${volumeSummary(result, result.counts)}\n`);
    },
  };
}

/** Two file snapshots: one line per changed path, then the counts. */
async function fileSnapshots(repo: Repository, a: Snapshot, b: Snapshot, options: DiffCommandOptions, context: CommandContext): Promise<number> {
  const out = context.stdout;
  const json = options.json === true;
  const changes = changeWriter(out, json);
  if (json) out.write(`{"kind":"files","a":${JSON.stringify(snapshotJson(a))},"b":${JSON.stringify(snapshotJson(b))},"changes":[`);
  else out.write(`${snapshotLine(a, b)}\n\n`);
  const summary = await diffFileSnapshots(repo, a, b, { onChange: changes.write, signal: context.signal });
  if (json) {
    out.write(`],${JSON.stringify(summary).slice(1)}\n`);
  } else {
    for (const p of summary.problems) context.stderr.write(`${problemLine(p)}\n`);
    out.write(`${changes.count() > 0 ? '\n' : ''}${countsText(summary.counts)}\n`);
    out.write(`Added:   ${formatSize(summary.bytesAdded)}\nRemoved: ${formatSize(summary.bytesRemoved)}\n(read ${summary.treesRead} trees; ${summary.treesSkipped} folders unchanged below were not read)\n`);
  }
  return problemsExit(summary.problems);
}

/** Writes changes as text lines or JSON array elements, and counts them. */
function changeWriter(out: NodeJS.WritableStream, json: boolean): { write: (change: PathChange) => Promise<void>; count: () => number } {
  let written = 0;
  return {
    write: async (change) => {
      const flowing = out.write(json ? `${written > 0 ? ',' : ''}${JSON.stringify(changeJson(change))}` : `${changeLine(change)}\n`);
      written += 1;
      if (!flowing) await once(out, 'drain'); // a slow reader (a pipe): wait rather than buffer the whole diff
    },
    count: () => written,
  };
}

/** A change in the JSON document: its path's bytes in hex beside it when they are not UTF-8. */
function changeJson(change: PathChange): object {
  return { ...change, ...withNameBytes('path', change.path) };
}

/** 14 when something could not be compared (the report is incomplete), else 0. */
function problemsExit(problems: readonly DiffProblem[]): number {
  if (problems.length === 0) return 0;
  return problems.every((p) => p.code.startsWith('E_FS_') || p.code === 'E_VOLUME_ENCRYPTED') ? ExitCode.contentUnreadable : ExitCode.repositoryDamaged;
}

/** How a compared snapshot is named in the JSON document. */
function snapshotJson(s: Snapshot): object {
  return { id: s.id, shortId: s.id.slice(0, 8), vm: s.vm, time: new Date(s.time).toISOString() };
}
