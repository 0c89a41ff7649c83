/**
 * A lease, version 1: says that a backup or a prune is running on a repository, so the two
 * never overlap (prune deletes what no snapshot references, and a running backup's chunks
 * are referenced by no snapshot until its manifest is written). Object stores have no locks,
 * so each side writes its own lease first and then lists the others': whichever comes
 * second sees the first (see leases.ts). Stored as an envelope of kind 7 under
 * `leases/<64 hex>`, a random name (leases are rewritten to refresh them, so they are not
 * content-addressed; the name is the object id the envelope authenticates). Added after
 * format version 1 was first written, compatibly. The plaintext is UTF-8 JSON:
 *
 * ```json
 * {
 *   "version": 1,
 *   "kind": "backup" | "prune",
 *   "host": "hv01", "pid": 4242,
 *   "started": "2026-11-26T01:00:00.000Z",
 *   "refreshed": "2026-11-26T01:05:00.000Z"   // rewritten every few minutes while it runs
 * }
 * ```
 * A lease not refreshed for {@link LEASE_EXPIRY_MS} belongs to a process that died: it no
 * longer counts, and prune deletes it. So does, at once, a lease whose `host` is the reader's
 * own host and whose `pid` no longer runs there (a killed backup or prune). Hosts sharing a repository need clocks that agree
 * within a few minutes (NTP).
 */
import { CofferError } from '../../errors/index.js';

export type LeaseKind = 'backup' | 'prune';

export interface Lease {
  version: 1;
  kind: LeaseKind;
  host: string;
  pid: number;
  started: string;
  refreshed: string;
}

/** How often a holder rewrites its lease. */
export const LEASE_REFRESH_MS = 2 * 60_000;
/** A lease older than this is a dead process's. */
export const LEASE_EXPIRY_MS = 10 * 60_000;

export function encodeLease(lease: Lease): Buffer {
  return Buffer.from(JSON.stringify(lease), 'utf8');
}

/** Parses and validates a lease; `E_CORRUPT_OBJECT` for anything malformed. */
export function decodeLease(bytes: Buffer, name: string): Lease {
  const corrupt = (why: string) => new CofferError('E_CORRUPT_OBJECT', `lease ${name} is corrupt: ${why}`, { subject: { object: name } });
  let l: Partial<Lease>;
  try {
    l = JSON.parse(bytes.toString('utf8')) as Partial<Lease>;
  } catch {
    throw corrupt('not JSON');
  }
  if (typeof l !== 'object' || l === null || l.version !== 1) throw corrupt('unknown version');
  if (l.kind !== 'backup' && l.kind !== 'prune') throw corrupt('bad kind');
  if (typeof l.host !== 'string' || l.host.length > 256 || !Number.isSafeInteger(l.pid)) throw corrupt('bad holder');
  if (typeof l.started !== 'string' || Number.isNaN(Date.parse(l.started))) throw corrupt('bad start');
  if (typeof l.refreshed !== 'string' || Number.isNaN(Date.parse(l.refreshed))) throw corrupt('bad refresh time');
  return { version: 1, kind: l.kind, host: l.host, pid: l.pid as number, started: l.started, refreshed: l.refreshed };
}
