/**
 * Migration 32: an event of a task or a run is recorded once, atomically
 * (src/server/notify/event-history.ts). `notify_events.event_key` names what happened
 * (`task TASK TYPE`, `run RUN TYPE VM`) and is unique; events that are not deduplicated
 * have none (NULLs never collide). Before, the notifier looked an earlier record up and then
 * inserted: two servers (a leader and one that had just lost or not yet gained the lease)
 * could both find none and both record. Older rows keep no key: the lookup still finds them.
 */
import type { Migration } from '../migration.js';

export const eventKeys: Migration = {
  id: 32,
  name: 'notify-event-keys',
  async up(db) {
    await db.schema.alterTable('notify_events').addColumn('event_key', 'text').execute();
    await db.schema.createIndex('notify_events_event_key').on('notify_events').column('event_key').unique().execute();
  },
};
