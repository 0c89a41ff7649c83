import { describe, expect, it } from 'vitest';
import { byMonth, daysUntilFull, storageSeries, type StorageDay } from './storage-series';

const at = (day: number, hour = 22) => new Date(2026, 10, day, hour, 0).toISOString();

describe('storageSeries', () => {
  it('sums each VM\'s newest logical size per day, and the bytes each day\'s backups stored', () => {
    const series = storageSeries(
      [
        { vm: 'web1', time: at(10), bytesLogical: 100 }, // before the period: counts from its first day
        { vm: 'web1', time: at(21), bytesLogical: 120 },
        { vm: 'db1', time: at(22), bytesLogical: 50 },
      ],
      [
        { vm: 'web1', ended: at(21, 23), bytesStored: 30 },
        { vm: 'db1', ended: at(22, 23), bytesStored: 10 },
        { vm: 'db1', ended: at(22, 23), bytesStored: undefined }, // a failed backup stored nothing known
        { vm: 'web1', ended: at(1), bytesStored: 999 }, // before the period
      ],
      new Date(2026, 10, 23, 9, 0),
      4,
      2,
    );
    expect(series.days.map((d) => [d.key, d.protected, d.storedAdded, d.storedSum])).toEqual([
      ['2026-11-20', 100, 0, 0],
      ['2026-11-21', 120, 30, 30],
      ['2026-11-22', 170, 10, 40],
      ['2026-11-23', 170, 0, 40],
    ]);
    expect(series.days.map((d) => d.protectedByVm)).toEqual([{ web1: 100 }, { web1: 120 }, { web1: 120, db1: 50 }, { web1: 120, db1: 50 }]);
    expect(series.growthPerDay).toBe(5);
    expect(series.perVm).toEqual([
      { vm: 'db1', snapshots: 1, latestLogical: 50, storedInPeriod: 10 },
      { vm: 'web1', snapshots: 2, latestLogical: 120, storedInPeriod: 30 },
    ]);
  });

  it('forecasts the days until full only while the repository grows', () => {
    expect(daysUntilFull(1000, 30)).toBe(33);
    expect(daysUntilFull(1000, 0)).toBeUndefined();
  });

  it('groups days by month: protected at the month\'s last day, stored during it, the sum at its end', () => {
    const days: StorageDay[] = [
      { key: '2026-10-30', protected: 100, protectedByVm: { a: 100 }, storedAdded: 5, storedSum: 5 },
      { key: '2026-10-31', protected: 110, protectedByVm: { a: 110 }, storedAdded: 7, storedSum: 12 },
      { key: '2026-11-01', protected: 90, protectedByVm: { a: 90 }, storedAdded: 0, storedSum: 12 },
      { key: '2026-11-02', protected: 130, protectedByVm: { a: 90, b: 40 }, storedAdded: 3, storedSum: 15 },
    ];
    expect(byMonth(days)).toEqual([
      { key: '2026-10', protected: 110, protectedByVm: { a: 110 }, storedAdded: 12, storedSum: 12 },
      { key: '2026-11', protected: 130, protectedByVm: { a: 90, b: 40 }, storedAdded: 3, storedSum: 15 },
    ]);
    expect(days[0]).toEqual({ key: '2026-10-30', protected: 100, protectedByVm: { a: 100 }, storedAdded: 5, storedSum: 5 }); // not changed
    expect(byMonth([])).toEqual([]);
  });
});
