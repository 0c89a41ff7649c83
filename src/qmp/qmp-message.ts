/**
 * The messages a QMP server sends, parsed from one line into a typed value.
 *
 * Wire format (docs/interop/qmp-spec.rst), one JSON object per line:
 * - greeting, first and once:  `{"QMP": {"version": {"qemu": {"major", "minor", "micro"}, "package"},
 *   "capabilities": [str, ...]}}`
 * - success:                   `{"return": any-json, "id": any-json}`
 * - error:                     `{"error": {"class": str, "desc": str}, "id": any-json}`; `id` is
 *   absent when the server failed before reading it (a JSON parse error)
 * - event, at any time between responses: `{"event": str, "data": object (optional),
 *   "timestamp": {"seconds": number, "microseconds": number}}` (both -1 when the host clock failed)
 * Members may come in any order and servers may add members: extra ones are ignored. Exactly
 * one of `QMP`, `return`, `error`, `event` must be present; anything else is E_PROTOCOL.
 */
import { CofferError } from '../errors/index.js';
import { arrayOf, asInteger, asObject, asString, isObject, type JsonObject } from './json-shape.js';

/** QEMU's version, as in the greeting and in `query-version` (QAPI `VersionInfo`). */
export interface QemuVersion {
  major: number;
  minor: number;
  micro: number;
  /** Distribution build string, e.g. `Debian 1:7.2+dfsg-7`; may be empty. */
  package: string;
}

/** What the server announces right after connecting. */
export interface QmpGreeting {
  version: QemuVersion;
  /** Protocol capabilities on offer (today only `oob`). */
  capabilities: string[];
}

/** An asynchronous event (QAPI `event` definitions name each one's `data`). */
export interface QmpEvent {
  event: string;
  data: JsonObject;
  /** Server time of the event in microseconds since the Unix epoch, or -1 when QEMU did not know. */
  timestampMicros: number;
}

/** One parsed server message. `id` is `undefined` when the message carried none. */
export type QmpServerMessage =
  | { kind: 'greeting'; greeting: QmpGreeting }
  | { kind: 'return'; id: unknown; value: unknown }
  | { kind: 'error'; id: unknown; errorClass: string; desc: string }
  | { kind: 'event'; event: QmpEvent };

const KINDS = ['QMP', 'return', 'error', 'event'] as const;

/** Parses one line; throws E_PROTOCOL (naming `peer`) for anything that is not a QMP message. */
export function parseQmpMessage(line: string, peer: string): QmpServerMessage {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (cause) {
    // Also catches the RangeError of a hostile, absurdly deep nesting.
    throw new CofferError('E_PROTOCOL', `${peer} sent a line that is not JSON: ${preview(line)}`, { subject: { path: peer }, cause });
  }
  if (!isObject(value)) throw new CofferError('E_PROTOCOL', `${peer} sent JSON that is not an object: ${preview(line)}`, { subject: { path: peer } });
  const present = KINDS.filter((k) => Object.hasOwn(value, k));
  if (present.length !== 1) {
    throw new CofferError('E_PROTOCOL', `${peer} sent a message that is neither a greeting, a reply nor an event: ${preview(line)}`, {
      subject: { path: peer },
    });
  }
  try {
    return parseKind(present[0] as (typeof KINDS)[number], value);
  } catch (err) {
    if (err instanceof CofferError) {
      throw new CofferError('E_PROTOCOL', `${peer} sent a malformed message (${err.message}): ${preview(line)}`, { subject: { path: peer }, cause: err });
    }
    throw err;
  }
}

function parseKind(kind: (typeof KINDS)[number], m: JsonObject): QmpServerMessage {
  const id = m['id'];
  switch (kind) {
    case 'QMP': {
      const qmp = asObject(m['QMP'], 'QMP');
      return {
        kind: 'greeting',
        greeting: {
          version: parseVersion(qmp['version'], 'QMP.version'),
          capabilities: arrayOf(qmp['capabilities'], 'QMP.capabilities', asString),
        },
      };
    }
    case 'return':
      return { kind: 'return', id, value: m['return'] };
    case 'error': {
      const error = asObject(m['error'], 'error');
      return { kind: 'error', id, errorClass: asString(error['class'], 'error.class'), desc: asString(error['desc'], 'error.desc') };
    }
    case 'event': {
      const stamp = asObject(m['timestamp'], 'timestamp');
      const seconds = asInteger(stamp['seconds'], 'timestamp.seconds');
      const micros = asInteger(stamp['microseconds'], 'timestamp.microseconds');
      return {
        kind: 'event',
        event: {
          event: asString(m['event'], 'event'),
          data: m['data'] === undefined ? {} : asObject(m['data'], 'data'),
          timestampMicros: seconds < 0 ? -1 : seconds * 1_000_000 + micros,
        },
      };
    }
  }
}

/** Parses QAPI `VersionInfo`: `{"qemu": {"major", "minor", "micro"}, "package": str}`. */
export function parseVersion(value: unknown, where: string): QemuVersion {
  const v = asObject(value, where);
  const qemu = asObject(v['qemu'], `${where}.qemu`);
  return {
    major: asInteger(qemu['major'], `${where}.qemu.major`),
    minor: asInteger(qemu['minor'], `${where}.qemu.minor`),
    micro: asInteger(qemu['micro'], `${where}.qemu.micro`),
    package: asString(v['package'], `${where}.package`),
  };
}

function preview(line: string): string {
  return JSON.stringify(line.length > 80 ? `${line.slice(0, 80)}…` : line);
}
