import { verifyRepository } from '../../repo/index.js';
import { ExitCode } from '../exit-codes.js';
import { withRepository, type CommandContext, type RepositoryOptions } from '../context.js';
import { formatBytes } from '../format.js';
import { ProgressReporter } from '../progress.js';

export interface VerifyCommandOptions extends RepositoryOptions {
  readData?: boolean;
}

/** `coffer verify [--read-data]`: exit 13 when anything is missing or corrupt. */
export async function verifyCommand(options: VerifyCommandOptions, context: CommandContext): Promise<number> {
  return withRepository(options, context, async (repo) => {
    const progress = ProgressReporter.for(context.stderr, options.json === true);
    const report = await verifyRepository(repo, {
      readData: options.readData === true,
      now: () => new Date(),
      onProgress: (p) => {
        if (p.phase === 'chunks') progress.update({ label: 'verify chunks', done: p.done, total: p.total, figures: { read: p.bytesRead } });
      },
    });
    progress.done();
    const ok = report.damaged.length === 0;
    if (options.json) {
      context.stdout.write(`${JSON.stringify({ ok, ...report })}\n`);
    } else {
      const what = options.readData ? `read and checked ${report.chunksRead} chunks (${formatBytes(report.bytesRead)})` : 'checked that every chunk exists';
      context.stdout.write(`${report.snapshots} snapshot(s), ${report.chunksReferenced} distinct chunks referenced; ${what}\n`);
      for (const damage of report.damaged) context.stdout.write(`DAMAGED ${damage.kind} ${damage.id.slice(0, 16)}… (${damage.problem}): ${damage.message}\n`);
      for (const hit of report.affected) {
        const ranges = hit.ranges.map((r) => `${r.start}-${r.end - 1}`).join(', ');
        context.stdout.write(`AFFECTED snapshot ${hit.snapshot.slice(0, 8)} (vm ${hit.vm}, ${hit.time}) disk ${hit.disk} bytes ${ranges}\n`);
      }
      if (report.quarantined > 0) {
        context.stdout.write(`${report.quarantined} damaged chunk(s) set aside under quarantine/; the next backup of the same data stores them again and heals the snapshots above\n`);
      }
      context.stdout.write(ok ? 'no errors were found\n' : `verify found ${report.damaged.length} damaged object(s)\n`);
    }
    return ok ? ExitCode.ok : ExitCode.verifyFailed;
  });
}
