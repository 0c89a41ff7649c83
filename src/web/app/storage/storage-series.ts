/**
 * Storage over time, from what the API keeps: the snapshots (each with its VM, time and
 * logical size) and the backup tasks (each with the bytes it stored). Per calendar day (the
 * browser's):
 *
 * - **protected**: the logical bytes of each VM's newest snapshot on or before that day,
 *   summed (what a full restore of everything would give back that day), and per VM;
 * - **stored**: the bytes the day's backups added to the repository (new data after dedup
 *   and compression), and their running sum over the period;
 * - the **growth** per day: the stored bytes added over the last `trendDays` days, divided;
 * - by month ({@link byMonth}): the same, grouped by calendar month.
 *
 * Pure: the days and `today` are given, so it is tested without a server or a clock.
 */
import { dayKey } from '../format';

export interface SnapshotPoint {
  vm: string;
  time: string;
  bytesLogical?: number | undefined;
}

export interface StoredPoint {
  vm: string | null;
  ended: string | null;
  bytesStored?: number | undefined;
}

export interface StorageDay {
  key: string;
  protected: number;
  /** The protected bytes per VM (its newest snapshot on or before that day); a VM without one yet is absent. */
  protectedByVm: Record<string, number>;
  storedAdded: number;
  storedSum: number;
}

export interface StorageSeries {
  days: StorageDay[];
  /** Bytes stored per day, averaged over the last `trendDays` days. */
  growthPerDay: number;
  perVm: { vm: string; snapshots: number; latestLogical: number; storedInPeriod: number }[];
}

export function storageSeries(snapshots: readonly SnapshotPoint[], stored: readonly StoredPoint[], today: Date, days: number, trendDays = 7): StorageSeries {
  const keys = Array.from({ length: days }, (_, i) => dayKey(new Date(today.getFullYear(), today.getMonth(), today.getDate() - (days - 1 - i))));
  const first = keys[0] ?? dayKey(today);
  const sorted = [...snapshots].sort((a, b) => a.time.localeCompare(b.time));
  const latest = new Map<string, number>();
  let s = 0;
  // Snapshots before the period count for its first day.
  while (s < sorted.length && dayKey(new Date((sorted[s] as SnapshotPoint).time)) < first) {
    const snap = sorted[s] as SnapshotPoint;
    latest.set(snap.vm, snap.bytesLogical ?? 0);
    s++;
  }
  const addedByDay = new Map<string, number>();
  const storedByVm = new Map<string, number>();
  for (const p of stored) {
    if (p.ended === null || p.bytesStored === undefined) continue;
    const key = dayKey(new Date(p.ended));
    if (key < first) continue;
    addedByDay.set(key, (addedByDay.get(key) ?? 0) + p.bytesStored);
    if (p.vm !== null) storedByVm.set(p.vm, (storedByVm.get(p.vm) ?? 0) + p.bytesStored);
  }
  let sum = 0;
  const out: StorageDay[] = keys.map((key) => {
    while (s < sorted.length && dayKey(new Date((sorted[s] as SnapshotPoint).time)) <= key) {
      const snap = sorted[s] as SnapshotPoint;
      latest.set(snap.vm, snap.bytesLogical ?? 0);
      s++;
    }
    const added = addedByDay.get(key) ?? 0;
    sum += added;
    return { key, protected: [...latest.values()].reduce((a, b) => a + b, 0), protectedByVm: Object.fromEntries(latest), storedAdded: added, storedSum: sum };
  });
  const recent = out.slice(-trendDays);
  const growthPerDay = recent.length === 0 ? 0 : recent.reduce((a, d) => a + d.storedAdded, 0) / recent.length;
  const vms = [...new Set(snapshots.map((p) => p.vm))].sort();
  const perVm = vms.map((vm) => {
    const own = sorted.filter((p) => p.vm === vm);
    return { vm, snapshots: own.length, latestLogical: own[own.length - 1]?.bytesLogical ?? 0, storedInPeriod: storedByVm.get(vm) ?? 0 };
  });
  return { days: out, growthPerDay, perVm };
}

/**
 * The days grouped by calendar month (`YYYY-MM`, in order): what was protected at the month's
 * last day in the period, the bytes stored during the month, and the running sum at its end.
 */
export function byMonth(days: readonly StorageDay[]): StorageDay[] {
  const months: StorageDay[] = [];
  for (const d of days) {
    const key = d.key.slice(0, 7);
    const last = months[months.length - 1];
    if (last !== undefined && last.key === key) {
      last.protected = d.protected;
      last.protectedByVm = d.protectedByVm;
      last.storedAdded += d.storedAdded;
      last.storedSum = d.storedSum;
    } else {
      months.push({ key, protected: d.protected, protectedByVm: d.protectedByVm, storedAdded: d.storedAdded, storedSum: d.storedSum });
    }
  }
  return months;
}

/** Days until `free` bytes are used at `growthPerDay`; undefined when it does not grow. */
export function daysUntilFull(free: number, growthPerDay: number): number | undefined {
  return growthPerDay <= 0 ? undefined : Math.floor(free / growthPerDay);
}
