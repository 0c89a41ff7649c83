/**
 * Coffer's Prometheus metrics (text exposition format 0.0.4, through prom-client). Each scrape
 * reads the figures once from the {@link MetricsSource} and rewrites every series, so a VM or
 * repository that disappeared from the record disappears from the output.
 *
 * Series:
 * - `coffer_vm_last_success_timestamp_seconds{vm,job}`: end of the VM's last successful backup.
 * - `coffer_vm_last_backup_bytes{vm,job,kind}`: its bytes, kind = logical | read | new | stored.
 * - `coffer_vm_last_backup_duration_seconds{vm,job}`.
 * - `coffer_tasks_finished_total{kind,status}`: tasks ended, by kind (backup, verify …) and status.
 * - `coffer_repository_stored_bytes{repository}`, `coffer_repository_free_bytes{repository}`,
 *   `coffer_repository_total_bytes{repository}`: the latest figures known.
 * - `coffer_notification_deliveries_total{target,outcome}`: delivery attempts, outcome = sent | failed.
 * - `coffer_notification_outbox_pending`: messages waiting to be delivered.
 * - per worker sharing a PostgreSQL state database (docs/scale.md): `coffer_worker_up{worker}`
 *   (1 while it heartbeats), `coffer_worker_tasks_running{worker}`,
 *   `coffer_worker_tasks_done{worker}` and `coffer_worker_read_bytes{worker}` (since it
 *   started), `coffer_worker_last_heartbeat_timestamp_seconds{worker}`.
 * - the process's own (`process_*`, `nodejs_*`) unless turned off.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { MetricsSource } from './metrics-source.js';

export interface CofferMetricsOptions {
  /** Also expose the process's CPU, memory and event-loop metrics (default true). */
  processMetrics?: boolean;
}

/** A registry bound to a source: `render()` answers one scrape. */
export class CofferMetrics {
  readonly registry = new Registry();
  private readonly lastSuccess: Gauge<'vm' | 'job'>;
  private readonly lastBytes: Gauge<'vm' | 'job' | 'kind'>;
  private readonly lastDuration: Gauge<'vm' | 'job'>;
  private readonly tasks: Counter<'kind' | 'status'>;
  private readonly repoStored: Gauge<'repository'>;
  private readonly repoFree: Gauge<'repository'>;
  private readonly repoTotal: Gauge<'repository'>;
  private readonly deliveries: Counter<'target' | 'outcome'>;
  private readonly pending: Gauge;
  private readonly worker: Record<'up' | 'running' | 'done' | 'bytes' | 'heartbeat', Gauge<'worker'>>;

  constructor(
    private readonly source: MetricsSource,
    options: CofferMetricsOptions = {},
  ) {
    const registers = [this.registry];
    this.lastSuccess = new Gauge({ name: 'coffer_vm_last_success_timestamp_seconds', help: 'End of the last successful backup of the VM in the job (Unix time).', labelNames: ['vm', 'job'], registers });
    this.lastBytes = new Gauge({ name: 'coffer_vm_last_backup_bytes', help: 'Bytes of the last successful backup: logical (disk size), read, new (not yet in the repository), stored (after compression).', labelNames: ['vm', 'job', 'kind'], registers });
    this.lastDuration = new Gauge({ name: 'coffer_vm_last_backup_duration_seconds', help: 'Duration of the last successful backup of the VM.', labelNames: ['vm', 'job'], registers });
    this.tasks = new Counter({ name: 'coffer_tasks_finished_total', help: 'Tasks that ended, by kind and status.', labelNames: ['kind', 'status'], registers });
    this.repoStored = new Gauge({ name: 'coffer_repository_stored_bytes', help: 'Bytes the repository stores (deduplicated, compressed).', labelNames: ['repository'], registers });
    this.repoFree = new Gauge({ name: 'coffer_repository_free_bytes', help: 'Free bytes on the storage of the repository.', labelNames: ['repository'], registers });
    this.repoTotal = new Gauge({ name: 'coffer_repository_total_bytes', help: 'Total bytes of the storage of the repository.', labelNames: ['repository'], registers });
    this.deliveries = new Counter({ name: 'coffer_notification_deliveries_total', help: 'Notification delivery attempts by target and outcome (sent, failed).', labelNames: ['target', 'outcome'], registers });
    this.pending = new Gauge({ name: 'coffer_notification_outbox_pending', help: 'Notifications waiting to be delivered.', registers });
    const perWorker = (name: string, help: string) => new Gauge({ name, help, labelNames: ['worker'], registers });
    this.worker = {
      up: perWorker('coffer_worker_up', '1 while the worker heartbeats, 0 when it stopped or went silent.'),
      running: perWorker('coffer_worker_tasks_running', 'Tasks the worker runs now.'),
      done: perWorker('coffer_worker_tasks_done', 'Tasks the worker ended since it started.'),
      bytes: perWorker('coffer_worker_read_bytes', 'Source bytes the worker\'s finished backups read since it started.'),
      heartbeat: perWorker('coffer_worker_last_heartbeat_timestamp_seconds', 'The worker\'s last heartbeat (Unix time).'),
    };
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** The content type of {@link render}'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Reads the figures and returns the exposition text. Throws what the source throws. */
  async render(): Promise<string> {
    const f = await this.source.figures();
    for (const m of [this.lastSuccess, this.lastBytes, this.lastDuration, this.tasks, this.repoStored, this.repoFree, this.repoTotal, this.deliveries, ...Object.values(this.worker)]) m.reset();
    for (const w of f.workers ?? []) {
      const labels = { worker: w.name };
      this.worker.up.set(labels, w.alive ? 1 : 0);
      this.worker.running.set(labels, w.tasksRunning);
      this.worker.done.set(labels, w.tasksDone);
      this.worker.bytes.set(labels, w.bytesRead);
      this.worker.heartbeat.set(labels, w.lastHeartbeat / 1000);
    }
    for (const b of f.vmBackups) {
      const labels = { vm: b.vm, job: b.job };
      this.lastSuccess.set(labels, b.at / 1000);
      this.lastDuration.set(labels, b.durationMs / 1000);
      this.lastBytes.set({ ...labels, kind: 'logical' }, b.logicalBytes);
      this.lastBytes.set({ ...labels, kind: 'read' }, b.readBytes);
      this.lastBytes.set({ ...labels, kind: 'new' }, b.newBytes);
      this.lastBytes.set({ ...labels, kind: 'stored' }, b.storedBytes);
    }
    for (const t of f.tasks) this.tasks.inc({ kind: t.kind, status: t.status }, t.count);
    for (const r of f.repositories) {
      const labels = { repository: r.repository };
      if (r.storedBytes !== undefined) this.repoStored.set(labels, r.storedBytes);
      if (r.freeBytes !== undefined) this.repoFree.set(labels, r.freeBytes);
      if (r.totalBytes !== undefined) this.repoTotal.set(labels, r.totalBytes);
    }
    for (const d of f.deliveries) this.deliveries.inc({ target: d.target, outcome: d.outcome }, d.count);
    this.pending.set(f.outboxPending);
    return this.registry.metrics();
  }
}
