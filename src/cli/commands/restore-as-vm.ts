import { TARGET_FORMATS, type TargetFormat } from '../../disk/index.js';
import { CofferError } from '../../errors/index.js';
import { resolveSnapshot } from '../../repo/index.js';
import { defineLibvirtDomain, restoreAsVm } from '../../restore/index.js';
import { withRepository, type CommandContext } from '../context.js';
import { formatBytes } from '../format.js';
import { ProgressReporter } from '../progress.js';
import type { RestoreCommandOptions } from './restore.js';

/**
 * `coffer restore SNAPSHOT --as-vm NAME --to DIR [--format F] [--define [--connect URI]]`:
 * every disk into DIR and the VM's definition rewritten for a clone with a new identity
 * (NAME.xml for libvirt, NAME.sh for QEMU); `--define` registers a libvirt clone with virsh.
 */
export async function restoreAsVmCommand(reference: string, options: RestoreCommandOptions & { asVm: string }, context: CommandContext): Promise<number> {
  if (options.to === undefined || options.to === '-') throw new CofferError('E_USAGE', '--as-vm needs --to DIR: the folder for the new VM\'s disks and definition');
  if (options.disk !== undefined) throw new CofferError('E_USAGE', '--as-vm restores every disk of the VM: leave out --disk');
  if (options.connect !== undefined && options.define !== true) throw new CofferError('E_USAGE', '--connect goes with --define');
  const format = options.format ?? 'raw';
  if (!(TARGET_FORMATS as readonly string[]).includes(format)) throw new CofferError('E_USAGE', `--format ${format}: choose one of ${TARGET_FORMATS.join(', ')}`);
  const to = options.to;
  return withRepository(options, context, async (repo) => {
    const snapshot = await resolveSnapshot(repo, reference);
    if (options.define === true && snapshot.definition?.format !== 'libvirt-xml') {
      throw new CofferError('E_USAGE', `--define registers a libvirt domain, but snapshot ${snapshot.id.slice(0, 8)} stores ${snapshot.definition === null ? 'no definition' : `a ${snapshot.definition.format}`}`);
    }
    const progress = ProgressReporter.for(context.stderr, options.json === true);
    const vm = await restoreAsVm(repo, snapshot, {
      name: options.asVm,
      to,
      format: format as TargetFormat,
      overwrite: options.overwrite === true,
      signal: context.signal,
      onProgress: (p) => progress.update({ label: `restore ${p.disk}`, done: p.bytesDone, total: p.bytesTotal }),
    });
    progress.done();
    const defined = options.define === true ? await defineLibvirtDomain(vm.definitionPath, options.connect === undefined ? {} : { connect: options.connect }) : undefined;
    if (options.json) {
      context.stdout.write(`${JSON.stringify({ snapshot: snapshot.id, vm: { name: vm.name, uuid: vm.uuid, kind: vm.kind, definition: vm.definitionPath, defined: defined !== undefined, macs: vm.macs, disks: vm.disks, notes: vm.notes } })}\n`);
      return 0;
    }
    for (const d of vm.disks) context.stdout.write(`restored ${snapshot.id.slice(0, 8)} ${d.disk} (${formatBytes(d.bytes)}) to ${d.path}\n`);
    context.stdout.write(`new VM ${vm.name}: uuid ${vm.uuid}${vm.macs.length > 0 ? `, MAC ${vm.macs.map((m) => m.to).join(', ')}` : ''}\n`);
    context.stdout.write(vm.kind === 'libvirt-xml'
      ? `definition: ${vm.definitionPath}${defined !== undefined ? ` (${defined})` : ` (virsh define ${vm.definitionPath})`}\n`
      : `start it with: ${vm.definitionPath} [more QEMU options]\n`);
    for (const note of vm.notes) context.stdout.write(`note: ${note}\n`);
    return 0;
  });
}
