/**
 * The scheduler: fires scheduled jobs' runs on an injected clock (no overlap, repeat-missed,
 * no catch-up after an edit), remembers each job's schedule state in the state database,
 * chains jobs (`after`), and starts on-demand runs of a job, one VM, or the VMs that failed.
 */
export { JobScheduler, type ScheduledJob, type SchedulerOptions } from './job-scheduler.js';
