/**
 * Every migration, in order. Add a new one at the end with the next id; never edit or remove
 * one that has been released.
 */
import type { Migration } from '../migration.js';
import { foundation } from './0001-foundation.js';
import { usersAndAccess } from './0002-users-and-access.js';
import { auditLog } from './0003-audit-log.js';
import { configVersions } from './0004-config-versions.js';
import { approvals } from './0005-approvals.js';
import { tasks } from './0010-tasks.js';
import { listOrderIndexes } from './0011-list-order-indexes.js';
import { snapshotIndex } from './0015-snapshot-index.js';
import { snapshotIndexTagRecords } from './0017-snapshot-index-tag-records.js';
import { snapshotIndexFilePaths } from './0018-snapshot-index-file-paths.js';
import { upkeepSchedules } from './0016-upkeep-schedules.js';
import { notifyEvents } from './0020-notify-events.js';
import { notifyOutbox } from './0021-notify-outbox.js';
import { notifyMetrics } from './0022-notify-metrics.js';
import { eventSweep } from './0023-event-sweep.js';
import { cluster } from './0030-cluster.js';
import { leaderLeases } from './0031-leader-leases.js';
import { eventKeys } from './0032-event-keys.js';
import { taskReadLatency } from './0033-task-read-latency.js';

export const MIGRATIONS: readonly Migration[] = [
  foundation,
  usersAndAccess,
  auditLog,
  configVersions,
  approvals,
  tasks,
  listOrderIndexes,
  snapshotIndex,
  upkeepSchedules,
  snapshotIndexTagRecords,
  snapshotIndexFilePaths,
  notifyEvents,
  notifyOutbox,
  notifyMetrics,
  eventSweep,
  cluster,
  leaderLeases,
  eventKeys,
  taskReadLatency,
];
