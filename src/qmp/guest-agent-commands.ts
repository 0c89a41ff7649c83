/**
 * The guest agent commands Coffer uses, one function each, checking the reply against
 * qemu's qga/qapi-schema.json (since 0.15.0 unless said otherwise):
 * - `guest-ping` → `{}`: the agent is alive.
 * - `guest-info` → `GuestAgentInfo {version: str, supported_commands: [{name: str,
 *   enabled: bool, success-response: bool}]}`.
 * - `guest-fsfreeze-status` → `GuestFsfreezeStatus`: `"thawed"` | `"frozen"`.
 * - `guest-fsfreeze-freeze` → int: the number of filesystems now frozen (each mounted
 *   filesystem that supports FIFREEZE; tmpfs and the like are skipped). On error the agent
 *   thaws what it froze. Frozen, the agent refuses most commands until thawed.
 * - `guest-fsfreeze-thaw` → int: how many filesystems this call thawed (0 when none was
 *   frozen: thawing is always safe to send).
 */
import { arrayOf, asBoolean, asInteger, asObject, asString } from './json-shape.js';
import type { GuestAgentCallOptions, GuestAgentClient } from './guest-agent-client.js';
import { CofferError } from '../errors/index.js';

/** What `guest-info` says about the agent. */
export interface GuestAgentInfo {
  version: string;
  commands: { name: string; enabled: boolean }[];
}

/** Whether the guest's filesystems are frozen, as the agent believes. */
export type GuestFsfreezeStatus = 'thawed' | 'frozen';

export async function guestPing(agent: GuestAgentClient, options: GuestAgentCallOptions = {}): Promise<void> {
  asObject(await agent.execute('guest-ping', undefined, options), 'guest-ping');
}

export async function guestInfo(agent: GuestAgentClient, options: GuestAgentCallOptions = {}): Promise<GuestAgentInfo> {
  const info = asObject(await agent.execute('guest-info', undefined, options), 'guest-info');
  return {
    version: asString(info['version'], 'guest-info.version'),
    commands: arrayOf(info['supported_commands'], 'guest-info.supported_commands', (item, where) => {
      const c = asObject(item, where);
      return { name: asString(c['name'], `${where}.name`), enabled: asBoolean(c['enabled'], `${where}.enabled`) };
    }),
  };
}

export async function guestFsfreezeStatus(agent: GuestAgentClient, options: GuestAgentCallOptions = {}): Promise<GuestFsfreezeStatus> {
  const status = asString(await agent.execute('guest-fsfreeze-status', undefined, options), 'guest-fsfreeze-status');
  if (status !== 'thawed' && status !== 'frozen') throw new CofferError('E_PROTOCOL', `${agent.peer} reported freeze status ${JSON.stringify(status)}`);
  return status;
}

/** Freezes every freezable filesystem of the guest; returns how many are frozen. */
export async function guestFsfreezeFreeze(agent: GuestAgentClient, options: GuestAgentCallOptions = {}): Promise<number> {
  return nonNegative(await agent.execute('guest-fsfreeze-freeze', undefined, options), 'guest-fsfreeze-freeze');
}

/** Thaws the guest's filesystems; returns how many this call thawed. */
export async function guestFsfreezeThaw(agent: GuestAgentClient, options: GuestAgentCallOptions = {}): Promise<number> {
  return nonNegative(await agent.execute('guest-fsfreeze-thaw', undefined, options), 'guest-fsfreeze-thaw');
}

function nonNegative(value: unknown, where: string): number {
  const n = asInteger(value, where);
  if (n < 0) throw new CofferError('E_PROTOCOL', `${where} returned ${n}`);
  return n;
}
