import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { CofferError } from '../errors/index.js';
import { ObjectKind } from './format/envelope.js';
import { decodeLease, encodeLease, LEASE_EXPIRY_MS, LEASE_REFRESH_MS, type Lease, type LeaseKind } from './format/lease.js';
import { leaseKey, LEASES_PREFIX } from './layout.js';
import type { Repository } from './repository.js';

/** A lease found in the repository. */
export interface LeaseInfo extends Lease {
  id: string;
  /** Refreshed within {@link LEASE_EXPIRY_MS}: its holder is alive. */
  live: boolean;
  /** Unreadable: it counts as live (whose it is cannot be told), until someone removes it. */
  damaged?: boolean;
}

/** Options of the acquire functions. */
export interface LeaseOptions {
  /** How long to wait for the other side to finish (default 30 minutes); 0: do not wait. */
  waitMs?: number;
  /** Between two looks (default 2 s). */
  pollMs?: number;
  now?: () => Date;
  signal?: AbortSignal;
  /** Told once while waiting, with what is waited for. */
  onWait?: (holders: LeaseInfo[]) => void;
}

/** Every lease of the repository, with whether its holder is alive. */
export async function listLeases(repo: Repository, now: Date = new Date()): Promise<LeaseInfo[]> {
  const leases: LeaseInfo[] = [];
  for await (const entry of repo.backend.list(LEASES_PREFIX)) {
    const match = /^leases\/([0-9a-f]{64})$/.exec(entry.key);
    if (match === null) continue;
    const id = match[1] as string;
    try {
      const lease = decodeLease(repo.codec.open(await repo.backend.get(entry.key), ObjectKind.lease, entry.key, Buffer.from(id, 'hex'), { rehash: false }), entry.key);
      leases.push({ id, ...lease, live: now.getTime() - Date.parse(lease.refreshed) < LEASE_EXPIRY_MS && !diedOnThisHost(lease) });
    } catch (error) {
      if (error instanceof CofferError && error.code === 'E_MISSING_OBJECT') continue; // released meanwhile
      if (!(error instanceof CofferError && error.code === 'E_CORRUPT_OBJECT')) throw error;
      // A lease that does not open still stands for someone: never ignore it silently.
      leases.push({ id, version: 1, kind: 'backup', host: '?', pid: 0, started: '', refreshed: '', live: true, damaged: true });
    }
  }
  return leases;
}

/**
 * True when the lease's holder ran on this host and its process is gone (killed, crashed):
 * its lease need not wait to expire. Another host's processes cannot be seen: theirs expire.
 */
function diedOnThisHost(lease: Lease): boolean {
  if (lease.host !== hostname() || lease.pid === process.pid) return false;
  try {
    process.kill(lease.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * A lease this process holds: refreshed in the background until released. `confirm()`
 * proves it is still there (a prune that presumed this process dead deletes it), so a
 * backup checks it before writing its manifest.
 */
export class HeldLease {
  private timer: NodeJS.Timeout | undefined;
  private released = false;
  private refreshing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly repo: Repository,
    readonly id: string,
    private lease: Lease,
    private readonly now: () => Date,
  ) {}

  /** Writes a new lease of `kind` (not yet checked against others). */
  static async write(repo: Repository, kind: LeaseKind, now: () => Date): Promise<HeldLease> {
    const time = now().toISOString();
    const held = new HeldLease(repo, randomBytes(32).toString('hex'), { version: 1, kind, host: hostname(), pid: process.pid, started: time, refreshed: time }, now);
    await held.put();
    held.timer = setInterval(() => {
      held.refreshing = held.refresh().catch(() => {}); // a failed refresh shows at confirm()
    }, LEASE_REFRESH_MS);
    held.timer.unref();
    return held;
  }

  get kind(): LeaseKind {
    return this.lease.kind;
  }

  /** Rewrites the lease with the current time. */
  async refresh(): Promise<void> {
    if (this.released) return;
    this.lease = { ...this.lease, refreshed: this.now().toISOString() };
    await this.put();
  }

  /** Throws `E_LEASE_LOST` when the lease is gone or expired: another process presumed this one dead. */
  async confirm(): Promise<void> {
    await this.refreshing;
    const lost = (why: string) =>
      new CofferError('E_LEASE_LOST', `this ${this.lease.kind}'s lease on ${this.repo.location} ${why}: a prune may have run meanwhile; run it again (what it stored is reused)`);
    if (!(await this.repo.backend.has(leaseKey(this.id)))) throw lost('was removed');
    if (this.now().getTime() - Date.parse(this.lease.refreshed) >= LEASE_EXPIRY_MS) throw lost(`was not refreshed for ${LEASE_EXPIRY_MS / 60_000} minutes`);
    await this.refresh();
  }

  /** Deletes the lease and stops refreshing it. Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    await this.refreshing;
    await this.repo.backend.delete(leaseKey(this.id));
  }

  private async put(): Promise<void> {
    const plaintext = encodeLease(this.lease);
    await this.repo.backend.put(leaseKey(this.id), this.repo.codec.seal(plaintext, ObjectKind.lease, Buffer.from(this.id, 'hex')));
  }
}

/**
 * A backup's lease: written, then the others' listed; while a prune runs, the backup takes
 * its own lease back (so the prune does not wait for it, no deadlock) and waits for the
 * prune to end, then tries again. Throws `E_REPO_BUSY` when `waitMs` passes.
 */
export async function acquireBackupLease(repo: Repository, options: LeaseOptions = {}): Promise<HeldLease> {
  const now = options.now ?? (() => new Date());
  const deadline = Date.now() + (options.waitMs ?? 30 * 60_000);
  let told = false;
  for (;;) {
    const lease = await HeldLease.write(repo, 'backup', now);
    const prunes = (await listLeases(repo, now())).filter((l) => l.kind === 'prune' && l.live && !l.damaged);
    if (prunes.length === 0) return lease;
    await lease.release();
    if (!told) options.onWait?.(prunes);
    told = true;
    await pause(repo, prunes, deadline, options, 'a prune is running');
  }
}

/**
 * A prune's lease: written, then the others' listed. Another live prune means `E_REPO_BUSY`
 * at once; live backups are waited for (new ones wait for this prune meanwhile). Expired
 * leases (dead processes) are deleted.
 */
export async function acquirePruneLease(repo: Repository, options: LeaseOptions = {}): Promise<{ lease: HeldLease; expiredRemoved: number }> {
  const now = options.now ?? (() => new Date());
  const deadline = Date.now() + (options.waitMs ?? 30 * 60_000);
  const lease = await HeldLease.write(repo, 'prune', now);
  let expiredRemoved = 0;
  let told = false;
  try {
    for (;;) {
      const others = (await listLeases(repo, now())).filter((l) => l.id !== lease.id);
      for (const dead of others.filter((l) => !l.live)) {
        await repo.backend.delete(leaseKey(dead.id));
        expiredRemoved++;
      }
      const prunes = others.filter((l) => l.live && l.kind === 'prune' && !l.damaged);
      if (prunes.length > 0) throw busy(repo, prunes, 'another prune is running');
      const backups = others.filter((l) => l.live && (l.kind === 'backup' || l.damaged === true));
      if (backups.length === 0) return { lease, expiredRemoved };
      if (!told) options.onWait?.(backups);
      told = true;
      await pause(repo, backups, deadline, options, 'backups are running');
    }
  } catch (error) {
    await lease.release().catch(() => {});
    throw error;
  }
}

async function pause(repo: Repository, holders: LeaseInfo[], deadline: number, options: LeaseOptions, what: string): Promise<void> {
  if (Date.now() >= deadline) throw busy(repo, holders, what);
  if (options.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'interrupted while waiting for the repository');
  await new Promise((resolve) => setTimeout(resolve, Math.min(options.pollMs ?? 2000, Math.max(1, deadline - Date.now()))));
}

function busy(repo: Repository, holders: LeaseInfo[], what: string): CofferError {
  const who = holders.map((h) => (h.damaged ? `an unreadable lease ${h.id.slice(0, 8)}` : `${h.kind} on ${h.host} (pid ${h.pid}) since ${h.started}`)).join('; ');
  return new CofferError('E_REPO_BUSY', `${repo.location}: ${what} (${who}); try again when it ends`, { subject: { repository: repo.location } });
}
