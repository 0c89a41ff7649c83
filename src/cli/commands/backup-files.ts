import { fstatSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { backupFiles, fileParentOf } from '../../backup/index.js';
import { CofferError } from '../../errors/index.js';
import { printableName, printableText, withNameBytes } from '../../names/index.js';
import { acquireBackupLease, checkTags, listSnapshots, resolveSnapshot, skipDamaged, type Snapshot } from '../../repo/index.js';
import { Excludes, ListingPrefetch, readAccountNames } from '../../source/index.js';
import { withRepository, type CommandContext, type RepositoryOptions } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import { formatBytes, formatDuration, parseSize } from '../format.js';
import { parseIsoTime } from '../iso-time.js';
import { runTimedHook } from '../timed-hook.js';

export interface FileBackupCommandOptions extends RepositoryOptions {
  host?: string;
  tag?: string[];
  time?: string;
  base?: string;
  force?: boolean;
  exclude?: string[];
  excludeFile?: string[];
  excludeCaches?: boolean;
  oneFileSystem?: boolean;
  excludeLargerThan?: string;
  stdin?: boolean;
  stdinName?: string;
  preHook?: string;
  postHook?: string;
  hookTimeout?: string;
}

/** Hooks that say nothing run for at most this long (a dump of a big database takes time). */
const DEFAULT_HOOK_TIMEOUT_MS = 10 * 60_000;
const NAME = /^[^\u0000-\u001f\u007f]{1,200}$/;

/**
 * `coffer backup --files PATH... [--host NAME]` and `coffer backup --stdin --stdin-name NAME`:
 * directory trees (or one stream) into a file snapshot. The pre-backup hook runs first (its
 * failure stops everything); the post-backup hook runs always after it, also after a failed
 * or interrupted backup. Exit 0, or 18 when the snapshot was saved with warnings.
 */
export async function backupFilesCommand(paths: string[], options: FileBackupCommandOptions, context: CommandContext): Promise<number> {
  const host = options.host ?? hostname();
  if (!NAME.test(host)) throw new CofferError('E_USAGE', '--host NAME: 1 to 200 printable characters');
  if (options.stdin === true) {
    if (paths.length > 0) throw new CofferError('E_USAGE', '--stdin backs up standard input: name no paths with it');
    if (options.stdinName === undefined) throw new CofferError('E_USAGE', '--stdin needs --stdin-name NAME, the file name the stream is stored under');
    refuseUnstreamableStdin(context.stdin);
  } else {
    if (paths.length === 0) throw new CofferError('E_USAGE', 'name the directories or files to back up (or --stdin)');
    if (options.stdinName !== undefined) throw new CofferError('E_USAGE', '--stdin-name goes with --stdin');
  }
  const tags = options.tag ?? [];
  checkTags(tags);
  const time = options.time === undefined ? undefined : parseIsoTime(options.time, '--time');
  const largerThan = options.excludeLargerThan === undefined ? undefined : parseSize(options.excludeLargerThan);
  if (largerThan !== undefined && !Number.isFinite(largerThan)) throw new CofferError('E_USAGE', `--exclude-larger-than ${options.excludeLargerThan}: give a size such as 500M or 2G`);
  const hookTimeoutMs = options.hookTimeout === undefined ? DEFAULT_HOOK_TIMEOUT_MS : parseDuration(options.hookTimeout);
  const excludes = await Excludes.compile({
    patterns: options.exclude ?? [],
    patternFiles: options.excludeFile ?? [],
    excludeCaches: options.excludeCaches === true,
    oneFileSystem: options.oneFileSystem === true,
    ...(largerThan !== undefined ? { largerThan } : {}),
  });
  const hook = (command: string, phase: 'pre-backup' | 'post-backup', result?: string) =>
    runTimedHook({ command, phase, host, timeoutMs: hookTimeoutMs, output: context.stderr, ...(result !== undefined ? { result } : {}) });

  if (options.preHook !== undefined) {
    try {
      await hook(options.preHook, 'pre-backup');
    } catch (error) {
      // The application may be half-quiesced: the post hook undoes what the pre hook did.
      if (options.postHook !== undefined) await hook(options.postHook, 'post-backup', 'failed').catch((e: Error) => context.stderr.write(`coffer: warning: ${e.message}\n`));
      throw error;
    }
  }
  let result = 'failed';
  const resolved = options.stdin === true ? [] : [...new Set(paths.map((p) => resolve(p)))].sort();
  // Listed while the repository opens (after the pre-backup hook: it may change the tree),
  // with the subtree digests an incremental compares (account names seed them).
  const listings = resolved.length > 0 ? new ListingPrefetch(resolved, { excludes, accounts: await readAccountNames() }) : undefined;
  try {
    const code = await withRepository(options, context, async (repo) => {
      const snapshots = await listSnapshots(repo, { onDamaged: skipDamaged });
      const parent: Snapshot | null = options.base !== undefined ? await resolveSnapshot(repo, options.base) : fileParentOf(snapshots, host, resolved, options.stdinName);
      if (parent !== null && parent.files === undefined) throw new CofferError('E_USAGE', `--base ${options.base}: snapshot ${parent.id.slice(0, 8)} holds disks, not files`);
      const lease = await acquireBackupLease(repo, {
        signal: context.signal,
        onWait: (holders) => context.stderr.write(`waiting for a prune to end (${holders.map((h) => `${h.host}, pid ${h.pid}`).join('; ')})\n`),
      });
      try {
        const snapshot = await backupFiles(repo, {
          host,
          paths: resolved,
          ...(options.stdin === true ? { stdin: { name: options.stdinName as string, stream: context.stdin } } : {}),
          parent,
          force: options.force === true,
          excludes,
          ...(listings !== undefined ? { listings } : {}),
          tags,
          ...(time !== undefined ? { time } : {}),
          lease,
          signal: context.signal,
          // A path that is not UTF-8 printed as \xNN (JSON adds its bytes in hex): as `files ls` shows it.
          onWarning: (w) => context.stderr.write(options.json ? `${JSON.stringify({ type: 'warning', ...w, ...withNameBytes('path', w.path) })}\n` : `coffer: warning: ${printableName(w.path)}: ${printableText(w.message)}\n`),
        });
        const files = snapshot.files as NonNullable<Snapshot['files']>;
        const stats = snapshot.stats;
        if (options.json) {
          context.stdout.write(`${JSON.stringify({ id: snapshot.id, host: snapshot.vm, time: snapshot.time, parent: snapshot.parent, paths: files.paths, entries: files.entries, warnings: files.warnings.map((w) => ({ ...w, ...withNameBytes('path', w.path) })), ...stats })}\n`);
        } else {
          const seconds = stats.durationMs / 1000;
          context.stdout.write(
            [
              `host ${host}: ${files.stdinName !== undefined ? `standard input as ${files.stdinName}` : files.paths.map(printableName).join(', ')}: ${files.entries} entries, ${formatBytes(stats.bytesLogical)}${snapshot.parent ? `, compared with snapshot ${snapshot.parent.slice(0, 8)}` : ', no parent'}`,
              `read ${formatBytes(stats.bytesRead)}, new ${formatBytes(stats.bytesNew)}, stored ${formatBytes(stats.bytesStored)} in ${formatDuration(seconds)}`,
              ...(files.warnings.length > 0 ? [`${files.warnings.length} warning(s): some files changed, vanished or could not be read (listed above)`] : []),
              `snapshot ${snapshot.id} saved`,
            ].join('\n') + '\n',
          );
        }
        return files.warnings.length > 0 ? ExitCode.filesIncomplete : 0;
      } finally {
        await lease.release().catch(() => {});
      }
    });
    result = code === 0 ? 'ok' : 'warnings';
    return code;
  } catch (error) {
    if (error instanceof CofferError && error.code === 'E_INTERRUPTED') result = 'interrupted';
    throw error;
  } finally {
    listings?.dispose();
    if (options.postHook !== undefined) {
      // Always, whatever happened: a failure here is reported, the backup's outcome stands.
      await hook(options.postHook, 'post-backup', result).catch((e: Error) => context.stderr.write(`coffer: warning: ${e.message}\n`));
    }
  }
}

/** `30`, `30s`, `5m`, `1h` → milliseconds. */
function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(text.trim());
  const value = match === null ? Number.NaN : Number(match[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? 's') as 's' | 'm' | 'h'];
  if (!Number.isFinite(value) || value <= 0 || value > 24 * 3_600_000) throw new CofferError('E_USAGE', `--hook-timeout ${text}: give a duration such as 30s, 5m or 1h (at most 24h)`);
  return value;
}

/**
 * `--stdin` reads a stream piped or redirected in: a terminal would store what is typed, and a
 * folder redirected in (`< /var/backups`) reads as nothing at all (an empty file, saved as
 * a success). Both are usage errors before anything is stored.
 */
function refuseUnstreamableStdin(stdin: NodeJS.ReadableStream & { isTTY?: boolean; fd?: number }): void {
  if (stdin.isTTY === true) throw new CofferError('E_USAGE', '--stdin reads a stream piped in (e.g. pg_dump db | coffer backup --stdin --stdin-name db.sql): standard input is a terminal');
  if (typeof stdin.fd !== 'number') return;
  let folder = false;
  try {
    folder = fstatSync(stdin.fd).isDirectory();
  } catch {
    return; // not a descriptor this process can inspect: the read says what is wrong
  }
  if (folder) throw new CofferError('E_USAGE', '--stdin reads a stream, and standard input is a folder: back up folders with --files PATH');
}

