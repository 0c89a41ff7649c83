import { formatBytes, formatDuration } from './format.js';

/** One progress sample: how far, out of how much, with extra figures to show. */
export interface ProgressSample {
  done: number;
  total: number;
  label: string;
  figures?: Record<string, number>;
}

/**
 * Renders progress: on a TTY, one line rewritten in place with bytes, throughput and ETA;
 * with `--json`, JSON lines (`{"type":"progress",...}`) on stderr, so that stdout keeps the
 * single result document scripts parse; otherwise nothing. At most a few updates a second.
 */
export class ProgressReporter {
  private last = 0;
  private readonly started: number;
  private drawn = false;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly mode: 'tty' | 'json' | 'none',
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
  }

  /** Picks the mode from the flags and the terminal. */
  static for(stream: NodeJS.WriteStream, json: boolean): ProgressReporter {
    return new ProgressReporter(stream, json ? 'json' : stream.isTTY ? 'tty' : 'none');
  }

  update(sample: ProgressSample, force = false): void {
    const now = this.now();
    const interval = this.mode === 'json' ? 1000 : 200;
    if (!force && now - this.last < interval) return;
    this.last = now;
    const seconds = Math.max(0.001, (now - this.started) / 1000);
    const rate = sample.done / seconds;
    const eta = rate > 0 ? (sample.total - sample.done) / rate : Number.NaN;
    if (this.mode === 'json') {
      this.stream.write(`${JSON.stringify({ type: 'progress', label: sample.label, done: sample.done, total: sample.total, bytesPerSecond: Math.round(rate), etaSeconds: Number.isFinite(eta) ? Math.round(eta) : null, ...sample.figures })}\n`);
    } else if (this.mode === 'tty') {
      const percent = sample.total > 0 ? ((100 * sample.done) / sample.total).toFixed(1) : '100.0';
      const extra = Object.entries(sample.figures ?? {}).map(([name, value]) => `${name} ${formatBytes(value)}`).join(', ');
      const line = `${sample.label} ${formatBytes(sample.done)} / ${formatBytes(sample.total)} ${percent}%  ${formatBytes(rate)}/s  ETA ${formatDuration(eta)}${extra ? `  (${extra})` : ''}`;
      this.stream.write(`\r\u001b[2K${line.slice(0, (this.stream.columns ?? 120) - 1)}`);
      this.drawn = true;
    }
  }

  /** Clears the TTY line before other output. */
  done(): void {
    if (this.drawn) this.stream.write('\r\u001b[2K');
    this.drawn = false;
  }
}
