/**
 * Migration 23: what the sweep of ended tasks needs (src/server/event-sweep.ts).
 * - `notify_events.task_id`, the task an event comes from: an event of one task is recorded
 *   once, whichever server hears it first or however often the sweep finds the task (the
 *   notifier looks an earlier record up by task and type). Older rows have none.
 * - indexes on `tasks.ended_at` and `runs.ended_at`: the sweep reads what ended since its
 *   last pass.
 */
import type { Migration } from '../migration.js';

export const eventSweep: Migration = {
  id: 23,
  name: 'event-sweep',
  async up(db) {
    await db.schema.alterTable('notify_events').addColumn('task_id', 'text').execute();
    await db.schema.createIndex('notify_events_task').on('notify_events').columns(['task_id', 'type']).execute();
    await db.schema.createIndex('tasks_ended_at').on('tasks').column('ended_at').execute();
    await db.schema.createIndex('runs_ended_at').on('runs').column('ended_at').execute();
  },
};
