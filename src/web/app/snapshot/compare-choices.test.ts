import { describe, expect, it } from 'vitest';
import { compareChoices } from './compare-choices';

const night = (day: number) => `2026-11-${String(day).padStart(2, '0')}T01:00:00.000Z`;
const disk = (day: number, parent?: string) => ({ id: `d${day}`, time: night(day), kind: 'disk' as const, parent: parent ?? null });

describe('compareChoices: what a snapshot is compared with', () => {
  it('proposes its parent, lists the VM\'s other snapshots of its kind newest first, never itself', () => {
    const { choices, preferred } = compareChoices({ ...disk(24, 'd22'), kind: 'disk' }, [disk(20), disk(25), { id: 'f23', time: night(23), kind: 'files' }, disk(22), disk(24, 'd22'), disk(23)]);
    expect(preferred).toBe('d22');
    expect(choices.map((c) => [c.id, c.mark])).toEqual([['d25', undefined], ['d23', undefined], ['d22', 'parent'], ['d20', undefined]]);
  });

  it('without a parent among them, proposes the newest one taken before it', () => {
    const { choices, preferred } = compareChoices({ id: 'd24', time: night(24), kind: 'disk', parent: 'gone' }, [disk(25), disk(20), disk(23)]);
    expect(preferred).toBe('d23');
    expect(choices.find((c) => c.id === 'd23')?.mark).toBe('previous');
  });

  it('a file snapshot is compared with file snapshots; the oldest has none before it to propose', () => {
    expect(compareChoices({ id: 'f1', time: night(1), kind: 'files' }, [{ id: 'f2', time: night(2), kind: 'files' }, disk(3)])).toEqual({ choices: [{ id: 'f2', time: night(2) }], preferred: undefined });
  });
});
