/**
 * What `/metrics` needs from the rest of the server: the current figures, read once per
 * scrape. The notifier (server/notify) provides them from its event record; anything with the
 * same shape will do.
 */

/** The figures of one scrape (times in ms since the epoch). */
export interface MetricsFiguresInput {
  vmBackups: readonly { vm: string; job: string; at: number; logicalBytes: number; readBytes: number; newBytes: number; storedBytes: number; durationMs: number }[];
  repositories: readonly { repository: string; storedBytes?: number; freeBytes?: number; totalBytes?: number }[];
  tasks: readonly { kind: string; status: string; count: number }[];
  deliveries: readonly { target: string; outcome: string; count: number }[];
  outboxPending: number;
}

export interface MetricsSource {
  /** Reads the figures; may throw (the scrape then answers 503). */
  figures(): Promise<MetricsFiguresInput>;
}
