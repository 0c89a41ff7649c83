/**
 * The VM's definition as QMP reports it, as one JSON document to store with a backup.
 *
 * What QMP can and cannot tell (investigated on QEMU 7.2):
 * - The command line itself is NOT available: `query-command-line-options` lists the options
 *   this QEMU binary accepts and their parameters, not the values given; no command returns
 *   argv. A caller on the same host may add `/proc/PID/cmdline` (the source layer's job).
 * - The devices given with `-device` (and hot-plugged ones) are QOM objects under
 *   `/machine/peripheral/ID` (those with an id) and `/machine/peripheral-anon/device[N]`.
 *   `qom-list PATH` lists `{name, type}` properties: `child<T>` entries of the folder are the
 *   devices (T is the device type), each device's other properties are its `-device`
 *   parameters (drive, serial, bootindex, mac, …, with defaults filled in) plus `parent_bus`
 *   (a `link<bus>` whose value is the QOM path of the bus: the tree's edges). `qom-get
 *   {path, property}` reads one value; some properties cannot be read and fail (omitted,
 *   listed in `unreadable`).
 * - `/machine`'s `type` property is the machine type (`pc-q35-7.2-machine`); `/objects/ID`
 *   children are the `-object`s (memory backends, iothreads, secrets): only their ids and
 *   types are kept, never their properties (a secret's data must not end up in a backup).
 * - The rest come from queries: `query-target` (arch), `query-name` (`-name`),
 *   `query-uuid` (`-uuid`, zeros when unset), `query-status`, `query-cpus-fast` (vCPUs and
 *   their topology), `query-memory-size-summary` (base and hot-plugged RAM), `query-pci` (the
 *   PCI tree with addresses and ids), `query-block` and `query-named-block-nodes` (drives and
 *   the block graph), `query-chardev` (serial ports, monitors, the guest agent channel), HMP
 *   `info qtree` (the whole bus/device tree with every property, as text, for humans) and HMP
 *   `info network` (NICs with their `-netdev` backends, which QMP 7.2 cannot query).
 * Queries this QEMU lacks (probed with `query-commands`) are skipped and listed in `missing`.
 */
import { forEachLimited } from '../concurrency/index.js';
import type { QmpClient, QmpCallOptions } from './qmp-client.js';
import { arrayOf, asObject, asString, optString, type JsonObject } from './json-shape.js';
import { humanMonitorCommand } from './hmp.js';
import { isQmpCommandError } from './qmp-command-error.js';
import { queryCommands } from './vm-status.js';
import { parseVersion, type QemuVersion } from './qmp-message.js';

/** Format tag of {@link VmDescription}; bump `version` on an incompatible change. */
export const VM_DESCRIPTION_FORMAT = 'coffer.qmp-vm-description' as const;

/** One QOM device (`-device`) with the properties QOM reports for it. */
export interface DeviceDescription {
  /** QOM path, e.g. `/machine/peripheral/sda`. */
  path: string;
  /** The `-device …,id=` (absent for anonymous devices). */
  id?: string;
  /** The device type, e.g. `scsi-hd`, `virtio-blk-pci`. */
  type: string;
  /** Readable non-child properties by name: `-device` parameters and `parent_bus`. */
  properties: JsonObject;
  /** Properties whose `qom-get` failed. */
  unreadable: string[];
}

/**
 * What {@link describeVm} returns: plain JSON (what is absent is omitted, never `undefined`), with
 * QEMU's replies kept verbatim under `queries`. Integers above 2^53 (a few uint64 properties
 * such as `max-bytes`) lose precision in JSON.parse.
 */
export interface VmDescription {
  format: typeof VM_DESCRIPTION_FORMAT;
  version: 1;
  qemu: QemuVersion;
  machineType: string;
  /** QEMU target architecture (`x86_64`, `aarch64`…). */
  arch?: string;
  /** `-name`, when given. */
  name?: string;
  /** `-uuid` (all zeros when not given). */
  uuid?: string;
  devices: DeviceDescription[];
  /** The `-object`s: ids and types only. */
  objects: { id: string; type: string }[];
  /** Raw replies of the queries named in the module doc, by command name. */
  queries: Record<string, unknown>;
  /** HMP `info qtree` output (LF line ends). */
  qtree?: string;
  /** HMP `info network` output (LF line ends). */
  network?: string;
  /** Commands this QEMU lacks, so their part is absent. */
  missing: string[];
  /**
   * The QEMU process's own command line (secrets redacted), which QMP cannot report: added by
   * the source when the monitor is a local unix socket (source/qemu/qemu-process.ts).
   */
  commandLine?: { pid: number; argv: string[] };
  /** Why {@link commandLine} is absent, when it was looked for. */
  commandLineUnavailable?: string;
}

const QUERIES = [
  'query-status', 'query-cpus-fast', 'query-memory-size-summary', 'query-pci', 'query-block', 'query-chardev',
] as const;
/** At most this many `qom-get` in flight (QEMU runs them one by one; this only fills the pipe). */
const QOM_CONCURRENCY = 8;

/**
 * Describes the VM behind `qmp`. Read-only: runs queries, `qom-list`/`qom-get` and HMP
 * `info qtree`, nothing that changes the VM. Throws E_QMP_ERROR only for a failing
 * mandatory query (`query-version`, `qom-get /machine type`), E_PROTOCOL for replies that
 * are not what QAPI documents, and the connection's errors.
 */
export async function describeVm(qmp: QmpClient, options: QmpCallOptions = {}): Promise<VmDescription> {
  const have = await queryCommands(qmp, options);
  const missing: string[] = [];
  const optional = async <T>(command: string, run: () => Promise<T>): Promise<T | undefined> => {
    if (!have.has(command)) {
      missing.push(command);
      return undefined;
    }
    return run();
  };

  const qemu = parseVersion(await qmp.execute('query-version', undefined, options), 'query-version');
  const machineType = asString(await qomGet(qmp, '/machine', 'type', options), 'qom-get /machine type');
  const target = await optional('query-target', () => qmp.execute('query-target', undefined, options));
  const name = await optional('query-name', () => qmp.execute('query-name', undefined, options));
  const uuid = await optional('query-uuid', () => qmp.execute('query-uuid', undefined, options));
  const queries: Record<string, unknown> = {};
  for (const command of QUERIES) {
    const reply = await optional(command, () => qmp.execute(command, undefined, options));
    if (reply !== undefined) queries[command] = reply;
  }
  const nodes = await optional('query-named-block-nodes', () => qmp.execute('query-named-block-nodes', { flat: true }, options));
  if (nodes !== undefined) queries['query-named-block-nodes'] = nodes;
  const qtree = await optional('human-monitor-command', () => humanMonitorCommand(qmp, 'info qtree', options));
  const network = qtree === undefined ? undefined : await humanMonitorCommand(qmp, 'info network', options);

  const description: VmDescription = {
    format: VM_DESCRIPTION_FORMAT,
    version: 1,
    qemu,
    machineType,
    devices: [
      ...(await describeDevices(qmp, '/machine/peripheral', true, options)),
      ...(await describeDevices(qmp, '/machine/peripheral-anon', false, options)),
    ],
    objects: (await qomChildren(qmp, '/objects', options)).map((c) => ({ id: c.name, type: c.type })),
    queries,
    missing,
  };
  if (target !== undefined) description.arch = asString(asObject(target, 'query-target')['arch'], 'query-target.arch');
  const vmName = name === undefined ? undefined : optString(asObject(name, 'query-name')['name'], 'query-name.name');
  if (vmName !== undefined) description.name = vmName;
  if (uuid !== undefined) description.uuid = asString(asObject(uuid, 'query-uuid')['UUID'], 'query-uuid.UUID');
  if (qtree !== undefined) description.qtree = qtree.replace(/\r\n/g, '\n');
  if (network !== undefined) description.network = network.replace(/\r\n/g, '\n');
  return description;
}

/** `qom-list PATH`: `[{name, type}]` (QAPI `ObjectPropertyInfo`). */
async function qomList(qmp: QmpClient, path: string, options: QmpCallOptions): Promise<{ name: string; type: string }[]> {
  const reply = await qmp.execute('qom-list', { path }, options);
  return arrayOf(reply, `qom-list ${path}`, (item, where) => {
    const p = asObject(item, where);
    return { name: asString(p['name'], `${where}.name`), type: asString(p['type'], `${where}.type`) };
  });
}

function qomGet(qmp: QmpClient, path: string, property: string, options: QmpCallOptions): Promise<unknown> {
  return qmp.execute('qom-get', { path, property }, options);
}

/** The `child<T>` entries of a QOM folder, as `{name, type: T}`; none when the folder does not exist. */
async function qomChildren(qmp: QmpClient, path: string, options: QmpCallOptions): Promise<{ name: string; type: string }[]> {
  let entries: { name: string; type: string }[];
  try {
    entries = await qomList(qmp, path, options);
  } catch (err) {
    if (isQmpCommandError(err)) return []; // e.g. /machine/peripheral-anon before any anonymous device
    throw err;
  }
  return entries.flatMap((e) => {
    const m = /^child<(.+)>$/.exec(e.type);
    return m ? [{ name: e.name, type: m[1] as string }] : [];
  });
}

async function describeDevices(qmp: QmpClient, folder: string, named: boolean, options: QmpCallOptions): Promise<DeviceDescription[]> {
  const devices: DeviceDescription[] = [];
  for (const child of await qomChildren(qmp, folder, options)) {
    const path = `${folder}/${child.name}`;
    const device: DeviceDescription = { path, ...(named ? { id: child.name } : {}), type: child.type, properties: {}, unreadable: [] };
    const readable = (await qomList(qmp, path, options)).filter((p) => !p.type.startsWith('child<') && p.name !== 'type');
    const values = new Map<string, unknown>();
    await forEachLimited(readable, QOM_CONCURRENCY, async (p) => {
      try {
        values.set(p.name, await qomGet(qmp, path, p.name, options));
      } catch (err) {
        if (!isQmpCommandError(err)) throw err;
        device.unreadable.push(p.name);
      }
    });
    // In qom-list order, so the same VM always gives the same JSON.
    for (const p of readable) if (values.has(p.name)) device.properties[p.name] = values.get(p.name);
    device.unreadable.sort();
    devices.push(device);
  }
  return devices;
}
