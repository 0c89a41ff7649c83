import { once } from 'node:events';
import { CofferError } from '../../errors/index.js';
import { ClientErrorLog, NbdServer, type NbdExport } from '../../nbd/index.js';
import { resolveSnapshot } from '../../repo/index.js';
import { CowOverlay, SnapshotDisk } from '../../restore/index.js';
import { withRepository, type CommandContext, type RepositoryOptions } from '../context.js';

export interface ServeCommandOptions extends RepositoryOptions {
  socket?: string;
  listen?: string;
  overlay?: string;
}

/**
 * `coffer serve SNAPSHOT --socket PATH | --listen HOST:PORT [--overlay DIR]`: the snapshot's
 * disks over NBD (export name = disk name), straight from the repository, until Ctrl-C or
 * SIGTERM. Read-only, or writable with `--overlay DIR` (writes go to DIR, the repository is
 * never modified). A QEMU boots from it at once (instant recovery).
 */
export async function serveCommand(reference: string, options: ServeCommandOptions, context: CommandContext): Promise<number> {
  if ((options.socket === undefined) === (options.listen === undefined)) throw new CofferError('E_USAGE', 'give --socket PATH or --listen HOST:PORT');
  const address = options.socket !== undefined ? { socket: options.socket } : hostPort(options.listen as string);
  return withRepository(options, context, async (repo) => {
    const snapshot = await resolveSnapshot(repo, reference);
    // The codec workers start now, not at the first read (their start took 0.2-1.2 s of nbdcopy's copy).
    repo.pool.start();
    const disks = snapshot.disks.map((disk) => new SnapshotDisk(repo, snapshot.id, disk, { readAhead: true }));
    const overlays: CowOverlay[] = [];
    try {
      const exports: Record<string, NbdExport> = {};
      for (const disk of disks) {
        if (options.overlay === undefined) {
          exports[disk.disk.name] = { device: disk, description: `coffer snapshot ${snapshot.id.slice(0, 8)} ${snapshot.vm} ${disk.disk.name}` };
        } else {
          const overlay = await CowOverlay.open(disk, options.overlay, disk.disk.name, { snapshot: snapshot.id, vm: snapshot.vm, disk: disk.disk.name });
          overlays.push(overlay);
          exports[disk.disk.name] = { device: overlay, writable: true, description: `coffer snapshot ${snapshot.id.slice(0, 8)} ${snapshot.vm} ${disk.disk.name} (overlay)` };
        }
      }
      // A client that breaks off, and above all a read that failed (a damaged chunk under a booting guest), is told on stderr.
      const clientErrors = new ClientErrorLog((line) => context.stderr.write(`coffer: warning: ${line}\n`));
      const server = await NbdServer.listen(address, { exports, onClientError: (error) => clientErrors.report(error) });
      const uris = snapshot.disks.map((d) =>
        'socket' in address ? `nbd+unix:///${encodeURIComponent(d.name)}?socket=${address.socket}` : `nbd://${address.host}:${address.port}/${encodeURIComponent(d.name)}`,
      );
      if (options.json) context.stdout.write(`${JSON.stringify({ snapshot: snapshot.id, exports: snapshot.disks.map((d, i) => ({ disk: d.name, size: d.size, uri: uris[i] })), writable: options.overlay !== undefined })}\n`);
      else {
        context.stdout.write(`serving snapshot ${snapshot.id.slice(0, 8)} of ${snapshot.vm} ${options.overlay !== undefined ? `(writes go to ${options.overlay})` : '(read-only)'}; Ctrl-C to stop\n`);
        for (const uri of uris) context.stdout.write(`  ${uri}\n`);
      }
      if (!context.signal.aborted) await once(context.signal, 'abort');
      await server.close();
      clientErrors.flush();
      return 0;
    } finally {
      for (const overlay of overlays) await overlay.close();
      for (const disk of disks) await disk.close();
    }
  });
}

function hostPort(text: string): { host: string; port: number } {
  const match = /^([^:]+|\[[0-9a-f:]+\]):(\d{1,5})$/i.exec(text);
  const port = Number(match?.[2]);
  if (match === null || port < 1 || port > 65535) throw new CofferError('E_USAGE', `--listen ${text}: write HOST:PORT, e.g. 127.0.0.1:10809`);
  return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port };
}
