/**
 * Tasks: every action of the service (a VM backup today; restore, verify, prune, sync and test
 * restore later) is a task with an id, owner, status, progress, a paged log and cancel, run in
 * a worker process. The runner queues tasks in the state database, starts them when the
 * layered limits allow (jobs' planner), shares bandwidth rules among them, retries failed VMs
 * with backoff, and marks the tasks a killed server left running as interrupted.
 */
export { TaskRunner, type RemoteWorkers, type RunRequest, type SharedBackup, type SharedDispatch, type LatencyGuard, type TaskRequest, type TaskRunnerOptions } from './task-runner.js';
export { chooseStarts, type ActiveTask } from './choose-starts.js';
export { BandwidthRules, type BandwidthRule } from './bandwidth-rules.js';
export { RETRY_DEFAULTS, retryAt, runEnd, taskEnd, type RetryPolicy } from './outcomes.js';
export type { EndedWindow, TaskFilter } from './task-store.js';
export { FINAL_STATUSES, TASK_KINDS, type Page, type RunInfo, type RunReason, type RunStatus, type TaskEventMap, type TaskInfo, type TaskKind, type TaskLogLine, type TaskReport, type TaskStatus, type VmTarget } from './task-types.js';
