import { CofferError } from '../../errors/index.js';
import { moveVmToLocalStorage } from '../../relocate/index.js';
import type { CommandContext } from '../context.js';
import { formatBytes } from '../format.js';
import { ProgressReporter } from '../progress.js';
import type { RestoreCommandOptions } from './restore.js';

/**
 * `coffer restore --to-vm QMP_SOCKET --to DIR [--format qcow2|raw]`: the running VM behind the
 * QMP monitor, booted from `coffer serve`, moves every disk it reads over NBD onto a local
 * image in DIR while it runs (src/relocate/); afterwards the export can end. No repository is
 * opened: the data comes through the export.
 */
export async function restoreToVmCommand(reference: string | undefined, options: RestoreCommandOptions & { toVm: string }, context: CommandContext): Promise<number> {
  if (reference !== undefined) throw new CofferError('E_USAGE', `--to-vm moves a running VM off its export: name no snapshot (got ${reference})`);
  if (options.to === undefined || options.to === '-') throw new CofferError('E_USAGE', '--to-vm needs --to DIR: the folder for the local images (QEMU must be able to write there)');
  if (options.disk !== undefined || options.asVm !== undefined || options.define === true) throw new CofferError('E_USAGE', '--to-vm moves every NBD-backed disk of the VM: leave out --disk, --as-vm and --define');
  const format = options.format ?? 'qcow2';
  if (format !== 'qcow2' && format !== 'raw') throw new CofferError('E_USAGE', `--format ${format}: --to-vm writes qcow2 (default) or raw`);
  const progress = ProgressReporter.for(context.stderr, options.json === true);
  const report = await moveVmToLocalStorage(qmpAddress(options.toVm), {
    dir: options.to,
    format,
    signal: context.signal,
    onProgress: (p) => progress.update({ label: `move ${p.disk}`, done: p.bytesDone, total: p.bytesTotal }),
  });
  progress.done();
  if (options.json) {
    context.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    for (const d of report.disks) context.stdout.write(`moved ${d.disk} (${formatBytes(d.size)}) to ${d.path}, off ${d.from.join(', ')}\n`);
    context.stdout.write(report.stillOpen.length === 0 ? 'the VM runs on local storage; the export can end\n' : '');
  }
  if (report.stillOpen.length > 0) context.stderr.write(`coffer: warning: QEMU still holds ${report.stillOpen.join(', ')} open (another device or node uses it): keep that export up\n`);
  return 0;
}

/** `/run/vm.qmp` (a unix socket) or `HOST:PORT`. */
function qmpAddress(text: string): { path: string } | { host: string; port: number } {
  const tcp = /^([^/:]+|\[[0-9a-f:]+\]):(\d{1,5})$/i.exec(text);
  if (tcp !== null) return { host: (tcp[1] as string).replace(/^\[|\]$/g, ''), port: Number(tcp[2]) };
  return { path: text };
}
