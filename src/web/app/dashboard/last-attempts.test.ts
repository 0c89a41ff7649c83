import { describe, expect, it } from 'vitest';
import { lastAttempts } from './last-attempts';

const task = (id: string, vm: string | null, attempt: number, kind = 'backup') => ({ id, kind, vm, attempt });

describe('lastAttempts: one line per VM, its last attempt', () => {
  it('a VM that failed and then succeeded on its retry is shown by the retry alone', () => {
    const tasks = [task('a1', 'web1', 1), task('b1', 'db1', 1), task('a2', 'web1', 2)];
    expect(lastAttempts(tasks).map((t) => t.id)).toEqual(['b1', 'a2']);
  });

  it('keeps the highest attempt whatever the order, and tasks without a VM each', () => {
    const tasks = [task('a3', 'web1', 3), task('a2', 'web1', 2), task('p', null, 1, 'prune'), task('q', null, 1, 'prune')];
    expect(lastAttempts(tasks).map((t) => t.id)).toEqual(['a3', 'p', 'q']);
  });

  it('a VM with two kinds of task in one run keeps both', () => {
    expect(lastAttempts([task('b', 'web1', 1), task('f', 'web1', 1, 'forget')]).map((t) => t.id)).toEqual(['b', 'f']);
  });
});
