import { backupVm } from '../../backup/index.js';
import { CofferError } from '../../errors/index.js';
import { openImageSource } from '../../source/index.js';
import { withRepository, type CommandContext, type RepositoryOptions } from '../context.js';
import { formatBytes, formatDuration } from '../format.js';
import { ProgressReporter } from '../progress.js';

export interface BackupCommandOptions extends RepositoryOptions {
  vm?: string;
  tag?: string[];
  time?: string;
  host?: string;
  imageSnapshot?: string;
}

const NAME = /^[^\u0000-\u001f\u007f]{1,200}$/;

/** `coffer backup --vm NAME DISK...`: one snapshot of the VM's disks. */
export async function backupCommand(disks: string[], options: BackupCommandOptions, context: CommandContext): Promise<number> {
  const vm = options.vm;
  if (vm === undefined || !NAME.test(vm)) throw new CofferError('E_USAGE', '--vm NAME is required (1 to 200 printable characters)');
  if (disks.length === 0) throw new CofferError('E_USAGE', 'name at least one disk image or block device to back up');
  const tags = options.tag ?? [];
  const badTag = tags.find((tag) => !NAME.test(tag));
  if (badTag !== undefined) throw new CofferError('E_USAGE', `tag ${JSON.stringify(badTag)} is not 1 to 200 printable characters`);
  let time: Date | undefined;
  if (options.time !== undefined) {
    time = new Date(options.time);
    if (Number.isNaN(time.getTime())) throw new CofferError('E_USAGE', `--time ${options.time} is not an ISO 8601 date`);
  }
  const source = await openImageSource(vm, disks, options.imageSnapshot === undefined ? {} : { imageSnapshot: options.imageSnapshot });
  try {
    return await withRepository(options, context, async (repo) => {
      const progress = ProgressReporter.for(context.stderr, options.json === true);
      const snapshot = await backupVm(repo, source, {
        tags,
        ...(time ? { time } : {}),
        ...(options.host ? { hostname: options.host } : {}),
        signal: context.signal,
        onProgress: (p) =>
          progress.update({ label: `${vm} ${p.disk}`, done: p.vmBytesDone, total: p.vmBytesTotal, figures: { read: p.bytesRead, new: p.bytesNew } }),
      });
      progress.done();
      const stats = snapshot.stats;
      if (options.json) {
        context.stdout.write(`${JSON.stringify({ id: snapshot.id, vm: snapshot.vm, time: snapshot.time, parent: snapshot.parent, ...stats })}\n`);
      } else {
        const seconds = stats.durationMs / 1000;
        context.stdout.write(
          [
            `vm ${vm}: ${snapshot.disks.length} disk(s), ${formatBytes(stats.bytesLogical)}${snapshot.parent ? `, compared with snapshot ${snapshot.parent.slice(0, 8)}` : ', no parent'}`,
            `read ${formatBytes(stats.bytesRead)}, new ${formatBytes(stats.bytesNew)}, stored ${formatBytes(stats.bytesStored)} in ${formatDuration(seconds)} (${formatBytes(stats.bytesRead / Math.max(seconds, 0.001))}/s)`,
            `snapshot ${snapshot.id} saved`,
          ].join('\n') + '\n',
        );
      }
      return 0;
    });
  } finally {
    await source.close();
  }
}
