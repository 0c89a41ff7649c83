/**
 * Where the host end of a VM's guest agent channel is, found through QMP.
 *
 * The agent talks over a `virtserialport` device whose `name` property is
 * `org.qemu.guest_agent.0` (the name qemu-ga and libvirt use); its `chardev` property names
 * the host-side chardev. QOM holds the devices under `/machine/peripheral/ID` and
 * `/machine/peripheral-anon/device[N]` (`qom-list`, `qom-get`). `query-chardev` gives each
 * chardev's `label` and `filename`; for a unix socket chardev QEMU 7.2 writes the filename as
 * `unix:PATH` plus `,server=on` when QEMU listens, prefixed by `disconnected:` while no client
 * is connected (QEMU serves one client at a time). PATH is as given on QEMU's command line,
 * so it may be relative to QEMU's working folder.
 */
import path from 'node:path';
import { isQmpCommandError } from './qmp-command-error.js';
import { arrayOf, asObject, asString } from './json-shape.js';
import type { QmpCallOptions, QmpClient } from './qmp-client.js';

/** The virtio-serial port name of the QEMU guest agent. */
export const GUEST_AGENT_PORT_NAME = 'org.qemu.guest_agent.0';

/**
 * The agent channel: a unix socket Coffer can connect to (`inUse`: another client is
 * connected now, so the agent will not answer Coffer until it leaves), no channel at all, or
 * a channel Coffer cannot use, with the reason.
 */
export type GuestAgentChannel =
  | { kind: 'socket'; path: string; chardev: string; inUse: boolean }
  | { kind: 'none' }
  | { kind: 'unusable'; reason: string };

/** Looks for the agent's port among the VM's devices and resolves its chardev. Read-only. */
export async function findGuestAgentChannel(qmp: QmpClient, options: QmpCallOptions = {}): Promise<GuestAgentChannel> {
  let chardev: string | undefined;
  for (const folder of ['/machine/peripheral', '/machine/peripheral-anon']) {
    for (const device of await qomChildren(qmp, folder, options)) {
      if (device.type !== 'virtserialport') continue;
      const devicePath = `${folder}/${device.name}`;
      const name = await qmp.execute('qom-get', { path: devicePath, property: 'name' }, options);
      if (name !== GUEST_AGENT_PORT_NAME) continue;
      chardev = asString(await qmp.execute('qom-get', { path: devicePath, property: 'chardev' }, options), `qom-get ${devicePath} chardev`);
      break;
    }
    if (chardev !== undefined) break;
  }
  if (chardev === undefined) return { kind: 'none' };
  if (chardev === '') return { kind: 'unusable', reason: `the ${GUEST_AGENT_PORT_NAME} port has no chardev` };
  const chardevs = arrayOf(await qmp.execute('query-chardev', undefined, options), 'query-chardev', (item, where) => {
    const c = asObject(item, where);
    return { label: asString(c['label'], `${where}.label`), filename: asString(c['filename'], `${where}.filename`) };
  });
  const found = chardevs.find((c) => c.label === chardev);
  if (found === undefined) return { kind: 'unusable', reason: `chardev ${chardev} of the guest agent port is not listed by query-chardev` };
  return parseChardevFilename(chardev, found.filename);
}

/** Reads a `query-chardev` filename (see above); exported for unit tests. */
export function parseChardevFilename(chardev: string, filename: string): GuestAgentChannel {
  const disconnected = filename.startsWith('disconnected:');
  const address = disconnected ? filename.slice('disconnected:'.length) : filename;
  const unix = /^unix:([^,]+)((?:,[^,]*)*)$/.exec(address);
  if (unix === null) return { kind: 'unusable', reason: `the guest agent chardev ${chardev} is "${filename}", not a unix socket Coffer can connect to (give --guest-agent SOCKET)` };
  const socketPath = unix[1] as string;
  if (!/(^|,)server=on(,|$)/.test((unix[2] as string).slice(1))) {
    return { kind: 'unusable', reason: `the guest agent chardev ${chardev} connects out to ${socketPath} (server=off): another program serves it` };
  }
  if (!path.isAbsolute(socketPath)) return { kind: 'unusable', reason: `the guest agent socket ${socketPath} is relative to QEMU's working folder (give --guest-agent SOCKET)` };
  return { kind: 'socket', path: socketPath, chardev, inUse: !disconnected };
}

async function qomChildren(qmp: QmpClient, folder: string, options: QmpCallOptions): Promise<{ name: string; type: string }[]> {
  let reply: unknown;
  try {
    reply = await qmp.execute('qom-list', { path: folder }, options);
  } catch (error) {
    if (isQmpCommandError(error)) return []; // /machine/peripheral-anon before any anonymous device
    throw error;
  }
  return arrayOf(reply, `qom-list ${folder}`, (item, where) => {
    const p = asObject(item, where);
    return { name: asString(p['name'], `${where}.name`), type: asString(p['type'], `${where}.type`) };
  }).flatMap((e) => {
    const m = /^child<(.+)>$/.exec(e.type);
    return m ? [{ name: e.name, type: m[1] as string }] : [];
  });
}
