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
  /** The workers sharing a PostgreSQL state database (docs/scale.md), when there are any. */
  workers?: readonly { name: string; alive: boolean; tasksRunning: number; tasksDone: number; bytesRead: number; lastHeartbeat: number }[];
}

export interface MetricsSource {
  /** Reads the figures; may throw (the scrape then answers 503). */
  figures(): Promise<MetricsFiguresInput>;
}
