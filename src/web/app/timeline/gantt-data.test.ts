import { describe, expect, it } from 'vitest';
import { ganttData, nightOf, NO_HOST } from './gantt-data';

const T0 = Date.parse('2026-11-24T21:00:00Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();
const period = { from: T0 - 3600_000, to: T0 + 12 * 3600_000, now: T0 + 300 * 60_000 };

let n = 0;
function task(vm: string, host: string | null, start: number | null, end: number | null, status: 'succeeded' | 'warning' | 'failed' | 'cancelled' | 'queued' | 'running' = 'succeeded', extra: { error?: { code: string; message: string }; kind?: string } = {}) {
  n++;
  return {
    id: `t${n}`,
    kind: extra.kind ?? 'backup',
    vm,
    host,
    job: 'nightly',
    runId: 'r1',
    status,
    created: at(0),
    started: start === null ? null : at(start),
    ended: end === null ? null : at(end),
    error: extra.error ?? null,
    progress: 0,
  };
}
const run = { id: 'r1', job: 'nightly', windowEnd: at(240) };

describe('ganttData', () => {
  it('puts one host\'s sequential backups on one row, in time order, coloured by result', () => {
    const data = ganttData([task('b', 'hv1', 30, 50, 'failed', { error: { code: 'E_X', message: 'disk gone' } }), task('a', 'hv1', 0, 30), task('c', 'hv2', 5, 20, 'warning')], [run], period);
    expect(data.rows.map((r) => r.label)).toEqual(['hv1', 'hv2']);
    expect(data.bars.map((b) => [b.vm, b.row, b.result])).toEqual([
      ['a', 0, 'succeeded'],
      ['c', 1, 'warning'],
      ['b', 0, 'failed'],
    ]);
    expect(data.bars.find((b) => b.vm === 'b')?.error).toBe('disk gone');
    expect(data.overlaps).toEqual([]);
    expect(data.windowEnds).toEqual([{ job: 'nightly', at: T0 + 240 * 60_000 }]);
  });

  it('gives overlapping backups of one host their own lane and names the overlap', () => {
    const data = ganttData([task('a', 'hv1', 0, 30), task('b', 'hv1', 10, 40), task('c', 'hv1', 35, 60)], [], period);
    expect(data.rows.map((r) => r.label)).toEqual(['hv1', 'hv1 (2)']);
    expect(data.bars.map((b) => [b.vm, b.row])).toEqual([
      ['a', 0],
      ['b', 1],
      ['c', 0],
    ]);
    expect(data.overlaps).toEqual([{ host: 'hv1', vms: ['a', 'b'] }]);
  });

  it('ends a running backup\'s bar now, and leaves out other kinds, unstarted tasks and other nights', () => {
    const data = ganttData(
      [task('a', null, 10, null, 'running'), task('r', 'hv1', 10, 20, 'succeeded', { kind: 'restore' }), task('q', 'hv1', null, null, 'queued'), task('old', 'hv1', -24 * 60, -23 * 60)],
      [run],
      period,
    );
    expect(data.bars.map((b) => [b.vm, b.host, b.end])).toEqual([['a', NO_HOST, period.now]]);
    expect(data.missed).toEqual([{ vm: 'q', host: 'hv1', job: 'nightly', taskId: expect.any(String), reason: 'still waiting after the window closed' }]);
  });

  it('lists the VMs the window closed on before their turn', () => {
    const closed = { code: 'E_WINDOW_CLOSED', message: 'the job\'s backup window closed before this VM\'s turn; it goes first next time' };
    const data = ganttData([task('a', 'hv1', 0, 240), task('late', 'hv1', null, 240, 'cancelled', { error: closed })], [run], period);
    expect(data.bars.map((b) => b.vm)).toEqual(['a']);
    expect(data.missed.map((m) => [m.vm, m.reason])).toEqual([['late', closed.message]]);
  });
});

describe('nightOf', () => {
  it('runs from noon to noon in local time', () => {
    const night = nightOf(new Date(2026, 10, 24, 3, 0));
    expect(new Date(night.from).getHours()).toBe(12);
    expect(new Date(night.from).getDate()).toBe(24);
    expect(new Date(night.to).getDate()).toBe(25);
  });
});
