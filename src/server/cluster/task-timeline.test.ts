import assert from 'node:assert/strict';
import { test } from 'node:test';
import { maxOverlap, mostWorkersAtOnce, type TimedRow } from './task-timeline.js';

const row = (worker: string, started: number, ended: number): TimedRow => ({ worker, started_at: started, ended_at: ended });

test('maxOverlap and mostWorkersAtOnce: tasks at once, and distinct workers at once', () => {
  const cases: { name: string; rows: TimedRow[]; tasks: number; workers: number }[] = [
    { name: 'none', rows: [], tasks: 0, workers: 0 },
    { name: 'one after another on one worker', rows: [row('w1', 0, 10), row('w1', 10, 20)], tasks: 1, workers: 1 },
    { name: 'touching intervals of two workers do not overlap', rows: [row('w1', 0, 10), row('w2', 10, 20)], tasks: 1, workers: 1 },
    { name: 'two tasks of one worker at once count as one worker', rows: [row('w1', 0, 10), row('w1', 5, 15)], tasks: 2, workers: 1 },
    { name: 'two workers overlapping by 1 ms', rows: [row('w1', 0, 10), row('w2', 9, 20)], tasks: 2, workers: 2 },
    { name: 'three workers at one instant', rows: [row('w1', 0, 10), row('w2', 2, 12), row('w3', 8, 30), row('w1', 10, 20)], tasks: 3, workers: 3 },
    { name: 'BIGINT times as strings (PostgreSQL)', rows: [{ worker: 'w1', started_at: '100', ended_at: '200' }, { worker: 'w2', started_at: '150', ended_at: '250' }], tasks: 2, workers: 2 },
  ];
  for (const c of cases) {
    assert.equal(maxOverlap(c.rows), c.tasks, `${c.name}: tasks`);
    assert.equal(mostWorkersAtOnce(c.rows), c.workers, `${c.name}: workers`);
  }
  assert.throws(() => maxOverlap([{ worker: 'w1', started_at: 1, ended_at: null }]), /not both started and ended/);
});
