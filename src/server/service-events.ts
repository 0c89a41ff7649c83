/**
 * The task runner's and the scheduler's events, told to the notifier as notification events:
 *
 * | runner / scheduler                         | notifier                                        |
 * |--------------------------------------------|-------------------------------------------------|
 * | a task ends                                | `task.finished` (kind, status: for /metrics)    |
 * | a backup succeeds (or with warnings)       | `vm.succeeded` with its run, job and figures    |
 * | a backup fails and no retry follows        | `vm.failed` with its run and the error text     |
 * | a run ends (not a skipped firing)          | `job.finished` (its VMs grouped), with the repository's stored bytes |
 * | a firing skipped because the job still ran | `run.overlap-skipped`                           |
 * | a verify task ends                         | `verify.result` (error when it failed), and `repository.damage` (critical) when it found damage |
 * | a test-restore task ends                   | `test-restore.result` (error when the snapshot did not restore intact) |
 *
 * Events are handled one at a time in the order they came (a queue), so a run's last VM event
 * is recorded before the run's `job.finished` groups them. A failure to notify is reported and
 * never reaches the runner. Every event of a task carries its `taskId`, and a run's events their
 * `runId`: the notifier records each once, so `replay` (the sweep of ended tasks and runs,
 * event-sweep.ts) can hand the same ends over again without a second message.
 */
import type { NotificationEvent } from './notify/index.js';
import type { JobScheduler } from './scheduler/index.js';
import type { RunInfo, TaskInfo, TaskRunner } from './tasks/index.js';

/** How many ended task ids the bridge remembers to skip repeated end events without asking the database. */
const FINISHED_KEPT = 10_000;

/** What the bridge needs besides the runner, the scheduler and the notifier. */
export interface EventBridgeOptions {
  /** A VM's tags now (from the configuration). */
  vmTags(vm: string): readonly string[];
  /** A repository's stored bytes now, or undefined when it cannot be read (for /metrics). */
  storedBytes(repository: string): Promise<number | undefined>;
  /** A backup ended: caches of that repository's snapshot list are stale. */
  onBackupEnded?(repository: string): void;
  onError(error: unknown): void;
}

/** The bridge: `idle` resolves when its queue is empty (for a stop); `replay` hands ended tasks and runs over again, in that order. */
export interface EventBridge {
  idle(): Promise<void>;
  replay(tasks: readonly TaskInfo[], runs: readonly RunInfo[]): Promise<void>;
}

/** Subscribes the notifier to the runner's and the scheduler's events. */
export function bridgeEvents(runner: TaskRunner, scheduler: JobScheduler, notifier: { emit(event: NotificationEvent): Promise<unknown> }, options: EventBridgeOptions): EventBridge {
  let queue: Promise<void> = Promise.resolve();
  const handle = (work: () => Promise<void>) => {
    queue = queue.then(work).catch((error: unknown) => options.onError(error));
  };
  const emit = async (event: NotificationEvent) => {
    await notifier.emit(event);
  };
  const finished = new Set<string>();

  const onTask = (task: TaskInfo) => {
    if (task.status === 'queued' || task.status === 'running' || finished.has(task.id)) return;
    finished.add(task.id);
    // A shortcut only (the notifier drops copies by task): kept bounded for a server that runs for years.
    if (finished.size > FINISHED_KEPT) finished.delete(finished.values().next().value as string);
    handle(async () => {
      await emit({ type: 'task.finished', severity: 'info', summary: `${task.kind} task ${task.id} ${task.status}`, task: { kind: task.kind, status: task.status, id: task.id }, taskId: task.id });
      for (const event of checkEvents(task, options.vmTags)) await emit({ ...event, taskId: task.id });
      if (task.kind !== 'backup' || task.vm === null) return;
      if (task.repository !== null) options.onBackupEnded?.(task.repository);
      const common = {
        taskId: task.id,
        vm: task.vm,
        vmTags: options.vmTags(task.vm),
        ...(task.host === null ? {} : { host: task.host }),
        ...(task.runId === null ? {} : { runId: task.runId }),
      };
      if (task.result !== null) {
        const r = task.result;
        await emit({
          type: 'vm.succeeded', severity: task.status === 'warning' ? 'warning' : 'info', ...common, job: task.job ?? '',
          summary: `${task.vm}: backed up (${r.mode}, ${r.bytesNew} new bytes)${r.warnings.length > 0 ? `, ${r.warnings.length} warning(s)` : ''}`,
          ...(r.warnings.length > 0 ? { error: r.warnings.join('\n') } : {}),
          backup: { logicalBytes: r.bytesLogical, readBytes: r.bytesRead, newBytes: r.bytesNew, storedBytes: r.bytesStored, durationMs: r.durationMs },
        });
      } else if (task.status === 'failed' || task.status === 'interrupted') {
        if (await retried(runner, task)) return;
        await emit({
          type: 'vm.failed', severity: 'error', ...common, ...(task.job === null ? {} : { job: task.job }),
          summary: `${task.vm}: backup ${task.status}${task.attempt > 1 ? ` (attempt ${task.attempt})` : ''}`,
          error: task.error === null ? task.status : `${task.error.code}: ${task.error.message}`,
        });
      }
    });
  };

  const onRun = (run: RunInfo) => {
    if (run.status === 'running' || run.status === 'skipped') return;
    handle(async () => {
      const tasks = (await runner.listTasks({ runId: run.id, limit: 1000 })).items;
      const repository = tasks.find((t) => t.repository !== null)?.repository ?? undefined;
      const storedBytes = repository === undefined ? undefined : await options.storedBytes(repository).catch(() => undefined);
      const name = run.job ?? (run.vms.length === 1 ? `backup of ${run.vms[0] as string}` : 'on-demand run');
      await emit({
        type: 'job.finished',
        severity: run.status === 'failed' ? 'error' : run.status === 'succeeded' ? 'info' : 'warning',
        summary: `${name}: ${run.status} (${run.detail ?? 'no detail'})`,
        runId: run.id,
        ...(run.job === null ? {} : { job: run.job }),
        ...(repository === undefined ? {} : { repository: { name: repository, ...(storedBytes === undefined ? {} : { storedBytes }) } }),
      });
    });
  };

  runner.events.on('task', onTask);
  runner.events.on('run', onRun);

  scheduler.events.on('skipped', (run: RunInfo) => {
    if (run.job === null || run.detail?.startsWith('skipped:') !== true) return;
    handle(() => emit({ type: 'run.overlap-skipped', severity: 'warning', job: run.job as string, summary: `${run.job}: ${run.detail ?? 'a scheduled run was skipped'}` }));
  });

  return {
    idle: () => queue,
    replay(tasks, runs) {
      for (const task of tasks) onTask(task);
      for (const run of runs) onRun(run);
      return queue;
    },
  };
}

/** The events of an ended verify or test-restore task (none for other kinds, or a cancelled one). */
export function checkEvents(task: TaskInfo, vmTags: (vm: string) => readonly string[]): NotificationEvent[] {
  if ((task.kind !== 'verify' && task.kind !== 'test-restore') || task.status === 'cancelled') return [];
  const ok = task.status === 'succeeded' || task.status === 'warning';
  const repository = task.repository ?? '?';
  const error = task.error === null ? undefined : `${task.error.code}: ${task.error.message}`;
  const common = {
    ...(task.repository === null ? {} : { repository: { name: task.repository } }),
    ...(task.vm === null ? {} : { vm: task.vm, vmTags: vmTags(task.vm) }),
    ...(error === undefined ? {} : { error }),
  };
  const detail = task.report?.summary ?? error ?? task.status;
  if (task.kind === 'test-restore') {
    return [{ type: 'test-restore.result', severity: ok ? 'info' : 'error', summary: `test restore of ${task.vm ?? '?'} from ${repository} ${ok ? 'passed' : 'FAILED'}: ${detail}`, ...common }];
  }
  const events: NotificationEvent[] = [{ type: 'verify.result', severity: ok ? 'info' : 'error', summary: `verify of repository ${repository} ${ok ? 'passed' : 'FAILED'}: ${detail}`, ...common }];
  const damaged = Number(task.report?.figures['damaged'] ?? 0);
  if (damaged > 0) {
    const objects = Array.isArray(task.report?.detail['damaged']) ? (task.report?.detail['damaged'] as { kind?: string; id?: string; message?: string }[]) : [];
    const list = objects.slice(0, 20).map((d) => `${d.kind ?? '?'} ${(d.id ?? '').slice(0, 16)}: ${d.message ?? ''}`).join('\n');
    events.push({ type: 'repository.damage', severity: 'critical', summary: `repository ${repository}: verify found ${damaged} damaged object(s)`, ...common, error: `${error ?? ''}${list === '' ? '' : `\n${list}`}${objects.length > 20 ? `\n… and ${objects.length - 20} more` : ''}`.trim() });
  }
  return events;
}

/** Whether the runner queued another attempt of this task's VM (it does so before it reports the end). */
async function retried(runner: TaskRunner, task: TaskInfo): Promise<boolean> {
  if (task.runId === null) return false;
  const tasks = (await runner.listTasks({ runId: task.runId, limit: 1000 })).items;
  return tasks.some((t) => t.retryOf === task.id);
}
