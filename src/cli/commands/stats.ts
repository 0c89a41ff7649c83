import { repositoryStats } from '../../repo/index.js';
import { withRepository, type CommandContext, type RepositoryOptions } from '../context.js';
import { formatBytes } from '../format.js';

/** `coffer stats`: what the repository holds and what dedup and compression save. */
export async function statsCommand(options: RepositoryOptions, context: CommandContext): Promise<number> {
  return withRepository(options, context, async (repo) => {
    const stats = await repositoryStats(repo);
    if (options.json) {
      context.stdout.write(`${JSON.stringify(stats)}\n`);
      return 0;
    }
    const lines = [
      `snapshots:          ${stats.snapshots} of ${stats.vms} VM(s)`,
      `logical size:       ${formatBytes(stats.bytesLogical)} (all disks of all snapshots)`,
      `  of which data:    ${formatBytes(stats.bytesData)} (the rest is zeros, never stored)`,
      `unique data:        ${formatBytes(stats.bytesUnique)} in ${stats.chunks} chunks`,
      `stored:             ${formatBytes(stats.bytesStored)} (${stats.indexPages} index pages)`,
      `dedup ratio:        ${stats.dedupRatio.toFixed(2)}x`,
      `compression ratio:  ${stats.compressionRatio.toFixed(2)}x`,
      `total saving:       ${stats.totalRatio.toFixed(2)}x (logical / stored)`,
    ];
    context.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  });
}
