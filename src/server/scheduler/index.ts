/**
 * The scheduler: fires scheduled jobs' runs on an injected clock (no overlap, repeat-missed,
 * no catch-up after an edit), remembers each job's schedule state in the state database,
 * chains jobs (`after`), and starts on-demand runs of a job, one VM, or the VMs that failed.
 * The upkeep carries out the rest of what a job declares: retention after each run, and the
 * verify, test-restore and prune schedules.
 */
export { JobScheduler, type ScheduledJob, type SchedulerOptions } from './job-scheduler.js';
export { JobUpkeep, type UpkeepJob, type UpkeepOptions, type UpkeepRepository, type UpkeepRunner } from './job-upkeep.js';
export { predictNight, workersNeeded, type Bottleneck, type NightInputs, type NightPrediction } from './planning-model.js';
export { UpkeepScheduleStore, type StoredChoreState } from './upkeep-schedule-store.js';
