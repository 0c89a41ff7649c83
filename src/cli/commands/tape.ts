import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { CofferError } from '../../errors/index.js';
import {
  acquireBackupLease,
  exportTape,
  fileVolumeSource,
  fileVolumeTarget,
  importTape,
  isValidRecordSize,
  listTape,
  missingFromSet,
  readTapeCatalog,
  resolveSnapshot,
  TAPE_DEFAULTS,
  type Snapshot,
} from '../../repo/index.js';
import { backendFor, repositoryLocation, withRepository, type CommandContext, type RepositoryOptions } from '../context.js';
import { refuseInsideRepository } from '../inside-repository.js';
import { formatBytes, formatTable, parseSize } from '../format.js';
import { readPassphrase } from '../passphrase.js';

export interface TapeExportOptions extends RepositoryOptions {
  to?: string;
  volumeSize?: string;
  blockSize?: string;
  overwrite?: boolean;
  newVolumeCommand?: string;
}

export interface TapeReadOptions extends RepositoryOptions {
  from?: string[];
}

/** A command that loads the next tape gets this long before it counts as failed. */
const VOLUME_COMMAND_TIMEOUT_MS = 60 * 60_000;

function sizeOption(text: string | undefined, option: string, fallback: number | undefined): number | undefined {
  if (text === undefined) return fallback;
  const size = parseSize(text);
  if (!Number.isSafeInteger(size) || size <= 0) throw new CofferError('E_USAGE', `${option} ${JSON.stringify(text)} is not a size (e.g. 256K, 64M, 1T)`);
  return size;
}

/** `coffer tape export SNAPSHOT… --to FILE`: a self-contained tape set (docs/tape-format.md). */
export async function tapeExportCommand(references: string[], options: TapeExportOptions, context: CommandContext): Promise<number> {
  if (options.to === undefined || options.to.trim() === '') throw new CofferError('E_USAGE', 'tape export needs --to FILE_OR_DEVICE (a file, or a tape drive such as /dev/nst0)');
  if (options.to === '-') throw new CofferError('E_USAGE', "--to -: tape export writes a file or a tape device, not standard output (give ./- for a file named '-')");
  if (references.length === 0) throw new CofferError('E_USAGE', 'tape export needs at least one snapshot (an id, a prefix, latest or NAME:latest)');
  const recordSize = sizeOption(options.blockSize, '--block-size', TAPE_DEFAULTS.recordSize) as number;
  if (!isValidRecordSize(recordSize)) throw new CofferError('E_USAGE', `--block-size ${options.blockSize ?? ''} must be a multiple of 512 bytes, at most 16M`);
  const volumeSize = sizeOption(options.volumeSize, '--volume-size', undefined);
  if (volumeSize !== undefined && volumeSize < 4 * recordSize) throw new CofferError('E_USAGE', `--volume-size must hold at least 4 records of ${recordSize} bytes`);
  const to = options.to;
  const command = options.newVolumeCommand;
  const target = fileVolumeTarget(to, {
    split: volumeSize !== undefined,
    overwrite: options.overwrite === true,
    ...(command === undefined ? {} : { changeVolume: (sequence: number) => runVolumeCommand(command, sequence, to, context) }),
  });
  return withRepository(options, context, async (repo) => {
    await refuseInsideRepository(repo.location, to, '--to');
    const snapshots: Snapshot[] = [];
    for (const reference of references) snapshots.push(await resolveSnapshot(repo, reference));
    // A prune waits while the export reads (a snapshot forgotten meanwhile keeps its chunks).
    const lease = await acquireBackupLease(repo, { signal: context.signal });
    try {
      const report = await exportTape(repo, snapshots, {
        target,
        recordSize,
        ...(volumeSize === undefined ? {} : { volumeSize }),
        signal: context.signal,
      });
      if (options.json) {
        context.stdout.write(`${JSON.stringify(report)}\n`);
      } else {
        const rows = [['Volume', 'Written to', 'Size', 'Members'], ...report.volumes.map((v) => [String(v.sequence), v.name, formatBytes(v.bytes), String(v.members)])];
        context.stdout.write(`${formatTable(rows)}\ntape set ${report.tapeSet}: ${report.snapshots.length} snapshot(s), ${report.objects} object(s), ${formatBytes(report.objectBytes)}\n`);
      }
      return 0;
    } finally {
      await lease.release().catch(() => {});
    }
  });
}

/** The volumes named by `--from` (repeatable, or comma-separated), each checked to exist. */
async function volumeSources(options: TapeReadOptions) {
  const paths = (options.from ?? []).flatMap((text) => text.split(',')).filter((p) => p !== '');
  if (paths.length === 0) throw new CofferError('E_USAGE', 'give the tape volumes with --from FILE[,FILE2…]');
  for (const path of paths) {
    try {
      await stat(path);
    } catch {
      throw new CofferError('E_USAGE', `no tape volume at ${path}`, { subject: { path } });
    }
  }
  return paths.map(fileVolumeSource);
}

/** `coffer tape import --from FILE[,FILE2…] -r REPO`: a tape set into an empty or the same repository. */
export async function tapeImportCommand(options: TapeReadOptions, context: CommandContext): Promise<number> {
  const sources = await volumeSources(options);
  const backend = backendFor(repositoryLocation(options, context));
  const report = await importTape(sources, backend, {
    passphrase: () => readPassphrase({
      passwordFile: options.passwordFile,
      env: context.env,
      variable: 'COFFER_PASSWORD',
      stdin: context.stdin,
      stderr: context.stderr,
      prompt: 'passphrase of the tape\'s repository',
      signal: context.signal,
      confirm: false,
    }),
    signal: context.signal,
  });
  if (options.json) {
    context.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    const added = report.snapshots.filter((s) => s.added).length;
    context.stdout.write(
      `${report.createdRepository ? 'created repository' : 'imported into repository'} ${report.repository.slice(0, 10)} at ${backend.location} from tape set ${report.tapeSet.slice(0, 8)} (${report.volumes} volume(s)): ` +
        `${added} snapshot(s) added, ${report.snapshots.length - added} already there; ${report.objectsWritten} of ${report.objectsRead} object(s) written (${formatBytes(report.bytesWritten)})\n`,
    );
  }
  return 0;
}

/** `coffer tape list --from FILE[,…]`: label and index of each volume, no passphrase needed. */
export async function tapeListCommand(options: TapeReadOptions, context: CommandContext): Promise<number> {
  const listings = await listTape(await volumeSources(options), context.signal);
  // A set that lacks a volume cannot be imported: say so, and exit as import would (2).
  const incomplete = missingFromSet(listings);
  const verdict = (): number => {
    for (const problem of incomplete) context.stderr.write(`coffer: ${problem}: tape import needs every volume of the set, each once\n`);
    return incomplete.length > 0 ? 2 : 0;
  };
  if (options.json) {
    context.stdout.write(`${JSON.stringify(listings)}\n`);
    return verdict();
  }
  const rows = [['Volume', 'File', 'Tape set', 'Created (UTC)', 'Repository', 'Chunks', 'Pages', 'Data', 'Last']];
  for (const l of listings) {
    rows.push([String(l.label.sequence), l.name, l.label.tapeSet.slice(0, 8), l.label.created.replace('T', ' ').replace(/\.\d+Z$/, 'Z'), l.label.repository.slice(0, 10), l.packs > 0 ? `${l.packs} packs` : String(l.chunks), String(l.indexPages), formatBytes(l.bytes), l.final ? 'yes' : 'no']);
  }
  const snapshots = [...new Set(listings.flatMap((l) => l.snapshots))];
  context.stdout.write(`${formatTable(rows)}\nsnapshots of the set: ${snapshots.join(' ')}\nevery member read back and matched its index\n`);
  return verdict();
}

/** Runs the command that loads the next tape (like GNU tar's --new-volume-script), with COFFER_TAPE_VOLUME and COFFER_TAPE_DEVICE set. */
async function runVolumeCommand(command: string, sequence: number, device: string, context: CommandContext): Promise<void> {
  const child = spawn('/bin/sh', ['-c', command], { env: { ...context.env, COFFER_TAPE_VOLUME: String(sequence), COFFER_TAPE_DEVICE: device }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d: Buffer) => context.stderr.write(d));
  child.stderr.on('data', (d: Buffer) => context.stderr.write(d));
  const timer = setTimeout(() => child.kill('SIGKILL'), VOLUME_COMMAND_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  }).finally(() => clearTimeout(timer));
  if (code !== 0) throw new CofferError('E_TARGET_UNWRITABLE', `the new-volume command ${JSON.stringify(command)} failed (exit ${code}) before volume ${sequence}`);
}

/**
 * `coffer tape catalog`: the media catalog — every snapshot that was written to tape, which
 * tape set and volumes hold it, and whether it is still in the repository (a forgotten
 * snapshot's catalog entry stays: it says which tapes to `tape import` it back from).
 */
export async function tapeCatalogCommand(options: RepositoryOptions, context: CommandContext): Promise<number> {
  return withRepository(options, context, async (repo) => {
    const entries = await readTapeCatalog(repo, { onDamaged: (key) => context.stderr.write(`warning: catalog note ${key} is damaged and was skipped\n`) });
    if (options.json) {
      context.stdout.write(`${JSON.stringify(entries)}\n`);
      return 0;
    }
    const rows = [['Snapshot', 'VM', 'Time (UTC)', 'In repository', 'Tape set', 'Volumes', 'Written (UTC)']];
    for (const e of entries) {
      rows.push([
        e.snapshot.slice(0, 8), e.vm ?? '?', e.time?.replace('T', ' ').replace(/\.\d+Z$/, 'Z') ?? '?', e.inRepository ? 'yes' : 'forgotten',
        e.tapeSet?.slice(0, 8) ?? '?', e.volumes.map((v) => v.name || `#${v.sequence}`).join(', '), e.written.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
      ]);
    }
    context.stdout.write(`${formatTable(rows)}\n${entries.length} catalog entr${entries.length === 1 ? 'y' : 'ies'}\n`);
    return 0;
  });
}
