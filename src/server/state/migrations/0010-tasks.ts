/**
 * Migration 10: runs, tasks and their logs, the scheduler's memory per job, and per VM what
 * the dispatcher orders by (tasks, scheduler and worker folders; issue #8).
 */
import type { Migration } from '../migration.js';

export const tasks: Migration = {
  id: 10,
  name: 'runs-tasks-schedules',
  async up(db) {
    await db.schema
      .createTable('runs')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('job', 'text')
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('owner', 'text', (c) => c.notNull())
      .addColumn('firing', 'bigint')
      .addColumn('window_end', 'bigint')
      .addColumn('cancel_at_window_end', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('vms', 'text', (c) => c.notNull())
      .addColumn('detail', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('ended_at', 'bigint')
      .execute();
    await db.schema.createIndex('runs_by_job').on('runs').columns(['job', 'created_at']).execute();
    await db.schema
      .createTable('tasks')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('run_id', 'text')
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('owner', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('vm', 'text')
      .addColumn('host', 'text')
      .addColumn('datastore', 'text')
      .addColumn('repository', 'text')
      .addColumn('job', 'text')
      .addColumn('spec', 'text', (c) => c.notNull())
      .addColumn('attempt', 'integer', (c) => c.notNull())
      .addColumn('retry_of', 'text')
      .addColumn('not_before', 'bigint')
      .addColumn('progress', 'real', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('started_at', 'bigint')
      .addColumn('ended_at', 'bigint')
      .addColumn('error_code', 'text')
      .addColumn('error_message', 'text')
      .addColumn('result', 'text')
      .execute();
    await db.schema.createIndex('tasks_by_status').on('tasks').columns(['status', 'created_at']).execute();
    await db.schema.createIndex('tasks_by_run').on('tasks').column('run_id').execute();
    await db.schema
      .createTable('task_log')
      .addColumn('task_id', 'text', (c) => c.notNull())
      .addColumn('seq', 'integer', (c) => c.notNull())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('level', 'text', (c) => c.notNull())
      .addColumn('line', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('task_log_pk', ['task_id', 'seq'])
      .execute();
    await db.schema
      .createTable('schedule_state')
      .addColumn('job', 'text', (c) => c.primaryKey())
      .addColumn('schedule', 'text', (c) => c.notNull())
      .addColumn('settled_until', 'bigint', (c) => c.notNull())
      .addColumn('last_fired', 'bigint')
      .addColumn('last_run_id', 'text')
      .execute();
    await db.schema
      .createTable('vm_state')
      .addColumn('vm', 'text', (c) => c.primaryKey())
      .addColumn('last_success_at', 'bigint')
      .addColumn('missed_window', 'integer', (c) => c.notNull())
      .addColumn('last_duration_ms', 'bigint')
      .execute();
  },
};
