/**
 * The `instant-recovery` kind: serves a snapshot's disks over NBD straight from the repository
 * (export name = disk name), as `coffer serve` does, until the task is cancelled; a QEMU boots
 * from it at once. Read-only, or writable with `overlayDir` (writes go to files there, the
 * repository is never modified). As soon as it listens, the task's report carries the NBD
 * URIs and a ready QEMU command line; cancel closes the listener and every connection, and the
 * task ends `succeeded` with how long it served.
 */
import { once } from 'node:events';
import { hostname } from 'node:os';
import { ClientErrorLog, NbdServer, type NbdExport } from '../../../nbd/index.js';
import { resolveSnapshot } from '../../../repo/index.js';
import { CowOverlay, SnapshotDisk } from '../../../restore/index.js';
import type { InstantRecoverySpec } from './kind-specs.js';
import { withTaskRepository } from './open-repository.js';
import type { KindContext, TaskReport } from './task-report.js';

export async function runInstantRecoveryTask(spec: InstantRecoverySpec, context: KindContext): Promise<TaskReport> {
  return withTaskRepository(spec.repository, async (repo) => {
    const snapshot = await resolveSnapshot(repo, spec.snapshot);
    const disks = snapshot.disks.map((disk) => new SnapshotDisk(repo, snapshot.id, disk, { readAhead: true }));
    const overlays: CowOverlay[] = [];
    try {
      const exports: Record<string, NbdExport> = {};
      for (const disk of disks) {
        const description = `coffer snapshot ${snapshot.id.slice(0, 8)} ${snapshot.vm} ${disk.disk.name}`;
        if (spec.overlayDir === undefined) exports[disk.disk.name] = { device: disk, description };
        else {
          const overlay = await CowOverlay.open(disk, spec.overlayDir, disk.disk.name, { snapshot: snapshot.id, vm: snapshot.vm, disk: disk.disk.name });
          overlays.push(overlay);
          exports[disk.disk.name] = { device: overlay, writable: true, description: `${description} (overlay)` };
        }
      }
      // A client that breaks off, and above all a read that failed (a damaged chunk under a booting guest), goes to the task's log.
      const clientErrors = new ClientErrorLog((line) => context.log(line, 'warning'));
      const server = await NbdServer.listen({ host: spec.listen.host, port: spec.listen.port }, { exports, onClientError: (error) => clientErrors.report(error) });
      const started = Date.now();
      try {
        const port = (server.address as { port: number }).port;
        const shownHost = spec.listen.host === '0.0.0.0' || spec.listen.host === '::' ? hostname() : spec.listen.host.includes(':') ? `[${spec.listen.host}]` : spec.listen.host;
        const list = snapshot.disks.map((d) => ({ disk: d.name, size: d.size, uri: `nbd://${shownHost}:${port}/${encodeURIComponent(d.name)}` }));
        const report = (servedMs: number): TaskReport => ({
          summary: `${servedMs === 0 ? 'serving' : `served for ${Math.round(servedMs / 1000)} s`} snapshot ${snapshot.id.slice(0, 8)} of ${snapshot.vm} over NBD on ${shownHost}:${port} (${spec.overlayDir === undefined ? 'read-only' : `writes to ${spec.overlayDir}`})`,
          warnings: [],
          figures: { disks: list.length, port, servedMs },
          detail: { snapshot: snapshot.id, vm: snapshot.vm, writable: spec.overlayDir !== undefined, exports: list, qemuCommand: qemuCommand(list.map((e) => e.uri), spec.overlayDir !== undefined), startedAt: new Date(started).toISOString() },
        });
        context.report(report(0));
        for (const e of list) context.log(`export ${e.disk}: ${e.uri}`);
        if (!context.signal.aborted) await once(context.signal, 'abort');
        context.log('stopping: the export closes');
        return report(Date.now() - started);
      } finally {
        await server.close();
        clientErrors.flush();
      }
    } finally {
      for (const overlay of overlays) await overlay.close();
      for (const disk of disks) await disk.close();
    }
  });
}

/**
 * A QEMU command line that boots from the exports: read-only exports get `snapshot=on` (the
 * guest's writes go to a temporary file QEMU makes); writable ones are used as they are.
 */
export function qemuCommand(uris: readonly string[], writable: boolean): string {
  const drives = uris.map((uri) => `-drive file=${uri},format=raw,if=virtio,cache=none${writable ? '' : ',snapshot=on'}`);
  return ['qemu-system-x86_64', '-machine', 'q35,accel=kvm:tcg', '-m', '2048', '-smp', '2', ...drives, '-nic', 'user,model=virtio-net-pci', '-display', 'none', '-serial', 'mon:stdio'].join(' ');
}
