/**
 * Every `health.interval` (default 15 min) and once at start: the protection report's VMs
 * past their RPO become `rpo.missed` events (warning), and each space location (the data
 * directory, every repository on a local path) whose free space (statfs: blocks available to
 * the server's user) is under `health.min-free` becomes a `disk-space.low` event (warning;
 * error under a fifth of the threshold). A condition is told once when it starts; it is told
 * again only after a check saw it clear. A location that cannot be read is reported through
 * `onError`, never as an event. Checks run one at a time; the clock is injected.
 */
import type { NotificationEvent } from '../notify/index.js';
import { filesystemSpace } from './filesystem-space.js';
import { spaceIsLow, type MinFree } from './min-free.js';

/** A filesystem to watch: the data directory or a local repository. */
export interface SpaceLocation {
  /** `data directory` or the repository's name. */
  readonly name: string;
  readonly repository: boolean;
  readonly path: string;
}

/** A VM past its recovery point objective (the protection report's `pastRpo`). */
export interface PastRpo {
  readonly vm: string;
  readonly rpo: string;
  readonly lastBackup: string | null;
  readonly ageMs: number | null;
}

export interface HealthWatchOptions {
  emit(event: NotificationEvent): Promise<unknown>;
  /** The VMs past their RPO now. */
  pastRpo(): Promise<readonly PastRpo[]>;
  /** The filesystems to watch now. */
  locations(): readonly SpaceLocation[];
  /** The threshold now. */
  minFree(): MinFree;
  /** A VM's tags (for notification rules). */
  vmTags?(vm: string): readonly string[];
  onError(error: unknown): void;
  now?: () => number;
  /** Free and total bytes of the filesystem holding `path` (default: statfs). */
  space?(path: string): Promise<{ free: number; total: number }>;
}

/** The default interval between checks. */
export const DEFAULT_HEALTH_INTERVAL_MS = 15 * 60_000;

export class HealthWatch {
  private readonly rpoTold = new Set<string>();
  private readonly spaceTold = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;

  constructor(private readonly options: HealthWatchOptions) {}

  /** Checks now and then every `intervalMs`, until {@link stop}. */
  start(intervalMs = DEFAULT_HEALTH_INTERVAL_MS): void {
    if (this.timer !== undefined) return;
    void this.check();
    this.timer = setInterval(() => void this.check(), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.checking;
  }

  /** One check of both conditions; never throws (failures go to `onError`). */
  check(): Promise<void> {
    this.checking ??= (async () => {
      await Promise.resolve();
      try {
        await this.checkRpo().catch((error: unknown) => this.options.onError(error));
        await this.checkSpace();
      } finally {
        this.checking = undefined;
      }
    })();
    return this.checking;
  }

  private async checkRpo(): Promise<void> {
    const past = await this.options.pastRpo();
    const now = new Set(past.map((p) => p.vm));
    for (const vm of [...this.rpoTold]) if (!now.has(vm)) this.rpoTold.delete(vm);
    for (const p of past) {
      if (this.rpoTold.has(p.vm)) continue;
      const age = p.ageMs === null ? 'it has no backup' : `its last good backup is ${formatAge(p.ageMs)} old (${p.lastBackup ?? ''})`;
      await this.options.emit({
        type: 'rpo.missed', severity: 'warning', vm: p.vm, vmTags: this.options.vmTags?.(p.vm) ?? [],
        summary: `${p.vm}: recovery point objective ${p.rpo} missed: ${age}`,
        ...(this.options.now === undefined ? {} : { at: this.options.now() }),
      });
      this.rpoTold.add(p.vm);
    }
  }

  private async checkSpace(): Promise<void> {
    const min = this.options.minFree();
    const space = this.options.space ?? filesystemSpace;
    const seen = new Set<string>();
    for (const location of this.options.locations()) {
      const key = `${location.repository ? 'repository' : 'data'}:${location.name}`;
      seen.add(key);
      let figures: { free: number; total: number };
      try {
        figures = await space(location.path);
      } catch (error) {
        this.options.onError(error);
        continue;
      }
      if (!spaceIsLow(figures.free, figures.total, min)) {
        this.spaceTold.delete(key);
        continue;
      }
      if (this.spaceTold.has(key)) continue;
      const severe = 'percent' in min ? (figures.free / Math.max(1, figures.total)) * 100 < min.percent / 5 : figures.free < min.bytes / 5;
      const what = location.repository ? `repository ${location.name}` : 'the data directory';
      await this.options.emit({
        type: 'disk-space.low', severity: severe ? 'error' : 'warning',
        summary: `${what} (${location.path}): ${formatBytes(figures.free)} free of ${formatBytes(figures.total)}, under ${'percent' in min ? `${min.percent}%` : formatBytes(min.bytes)}`,
        ...(location.repository ? { repository: { name: location.name, freeBytes: figures.free, totalBytes: figures.total } } : {}),
        ...(this.options.now === undefined ? {} : { at: this.options.now() }),
      });
      this.spaceTold.add(key);
    }
    for (const key of [...this.spaceTold]) if (!seen.has(key)) this.spaceTold.delete(key);
  }
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i] as string}`;
}

function formatAge(ms: number): string {
  const hours = ms / 3_600_000;
  return hours >= 48 ? `${Math.floor(hours / 24)} days` : `${Math.floor(hours)} h ${Math.floor((ms % 3_600_000) / 60_000)} min`;
}
