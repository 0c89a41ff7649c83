/**
 * @module jobs
 * When backups run, and how many at once: calendar schedules (systemd / Proxmox calendar
 * events and cron, per time zone), the run semantics of a scheduled job (no overlap, one
 * catch-up run after downtime when asked, no catch-up after an edit), and the layered limiter
 * that staggers VM backups under global, per-host, per-datastore, per-repository and per-job
 * limits inside backup windows. Pure logic over an injected clock: the server drives it.
 */
export { parseSchedule, type Schedule, type ScheduleOptions } from './calendar/index.js';
export { decideRun, MAX_COUNTED_FIRINGS, scheduleEdited, type RunCheck, type RunDecision, type ScheduleState } from './schedule-state.js';
export {
  DEFAULT_PER_HOST_LIMIT,
  forecastRun,
  inPriorityOrder,
  LAYERS,
  planStarts,
  type ConcurrencyLimits,
  type Forecast,
  type ForecastEntry,
  type ForecastOptions,
  type Layer,
  type LimitTable,
  type PendingTask,
  type PlanOptions,
  type RunningTask,
  type StartPlan,
  type TaskPlacement,
} from './planner/index.js';
