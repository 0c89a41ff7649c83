/**
 * QEMU's built-in NBD server: start it, export nodes through it, stop it.
 *
 * QAPI facts relied on (qapi/block-export.json, checked against QEMU 7.2):
 * - `nbd-server-start {addr: SocketAddressLegacy, tls-creds?, tls-authz?, max-connections?}`,
 *   with `addr` = `{"type": "unix", "data": {"path"}}` or `{"type": "inet", "data": {"host",
 *   "port": str}}`. One server per QEMU; a second start fails (GenericError).
 * - `block-export-add {type: "nbd", id, node-name, writable?, writethrough?, name?,
 *   description?, bitmaps?: [name | {node, name}], allocation-depth?}`: `name` is the NBD
 *   export name (default: the node name); each bitmap is offered to clients as the meta
 *   context `qemu:dirty-bitmap:NAME`. A bitmap must be disabled (not recording) to be exported
 *   read-only, and is `busy` while exported.
 * - `block-export-del {id, mode?: "safe" | "hard"}` starts removing the export; it is gone when
 *   BLOCK_EXPORT_DELETED `{id}` arrives (`safe`, the default, refuses while clients are
 *   connected; `hard` disconnects them).
 * - `query-block-exports` returns `[{id, type, node-name, shutting-down}]`.
 * - `nbd-server-stop` stops the server and removes its exports.
 */
import type { QmpClient, QmpCallOptions } from './qmp-client.js';
import type { DirtyBitmapRef } from './dirty-bitmaps.js';
import { arrayOf, asBoolean, asObject, asString } from './json-shape.js';

/** Where QEMU's NBD server listens. Keep TCP on loopback. */
export type NbdListenAddress = { path: string } | { host: string; port: number };

/** `nbd-server-start`. */
export async function nbdServerStart(qmp: QmpClient, address: NbdListenAddress, options: QmpCallOptions & { maxConnections?: number } = {}): Promise<void> {
  const { maxConnections, ...call } = options;
  const addr = 'path' in address
    ? { type: 'unix', data: { path: address.path } }
    : { type: 'inet', data: { host: address.host, port: String(address.port) } };
  await qmp.execute('nbd-server-start', maxConnections === undefined ? { addr } : { addr, 'max-connections': maxConnections }, call);
}

/** `nbd-server-stop`. */
export async function nbdServerStop(qmp: QmpClient, options?: QmpCallOptions): Promise<void> {
  await qmp.execute('nbd-server-stop', undefined, options);
}

/** Arguments of {@link blockExportAdd} (an NBD export). */
export interface NbdExportArgs {
  id: string;
  nodeName: string;
  /** The NBD export name; default: the node name. */
  name?: string;
  description?: string;
  writable?: boolean;
  bitmaps?: readonly (string | DirtyBitmapRef)[];
  allocationDepth?: boolean;
}

/** `block-export-add` with `type: nbd`. */
export async function blockExportAdd(qmp: QmpClient, args: NbdExportArgs, options?: QmpCallOptions): Promise<void> {
  const data: Record<string, unknown> = { type: 'nbd', id: args.id, 'node-name': args.nodeName };
  if (args.name !== undefined) data['name'] = args.name;
  if (args.description !== undefined) data['description'] = args.description;
  if (args.writable !== undefined) data['writable'] = args.writable;
  if (args.bitmaps !== undefined) data['bitmaps'] = [...args.bitmaps];
  if (args.allocationDepth !== undefined) data['allocation-depth'] = args.allocationDepth;
  await qmp.execute('block-export-add', data, options);
}

/**
 * `block-export-del`, then waits for BLOCK_EXPORT_DELETED of that export (subscribed before
 * the command, so it cannot be missed). `mode: hard` disconnects connected clients.
 */
export async function blockExportDel(qmp: QmpClient, id: string, options: QmpCallOptions & { mode?: 'safe' | 'hard' } = {}): Promise<void> {
  const { mode, ...call } = options;
  const deleted = qmp.waitForEvent('BLOCK_EXPORT_DELETED', (e) => e.data['id'] === id, call);
  await qmp.execute('block-export-del', mode === undefined ? { id } : { id, mode }, call);
  await deleted;
}

/** One export, from `query-block-exports`. */
export interface BlockExportInfo {
  id: string;
  type: string;
  nodeName: string;
  shuttingDown: boolean;
}

/** `query-block-exports`. */
export async function queryBlockExports(qmp: QmpClient, options?: QmpCallOptions): Promise<BlockExportInfo[]> {
  return arrayOf(await qmp.execute('query-block-exports', undefined, options), 'query-block-exports', (item, where) => {
    const e = asObject(item, where);
    return {
      id: asString(e['id'], `${where}.id`),
      type: asString(e['type'], `${where}.type`),
      nodeName: asString(e['node-name'], `${where}.node-name`),
      shuttingDown: asBoolean(e['shutting-down'], `${where}.shutting-down`),
    };
  });
}
