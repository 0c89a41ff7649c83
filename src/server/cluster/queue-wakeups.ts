/**
 * Wakes a worker's hand-out when the queue may have work for it, instead of at its next
 * once-a-second pass: when a run starts anywhere (its tasks were just queued) and when a task
 * ends anywhere (its host's slot, or a layer's, is free again). It hears the events every
 * process sends on `coffer_events` (event-relay.ts), its own included, and coalesces a burst
 * into one hand-out `delayMs` later (one transaction under the dispatch lock per burst, not
 * per event). Measured in bench/workers.ts: the time from a run's start to its first
 * hand-out drops from up to the 1 s pass to the NOTIFY's round trip.
 */
import { listenForNotifications } from './event-relay.js';

const FINAL = new Set(['succeeded', 'warning', 'failed', 'cancelled', 'interrupted']);

export function wakeOnQueueChanges(url: string, wake: () => void, delayMs = 20): { close(): Promise<void>; ready: Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  const listener = listenForNotifications(url, (text) => {
    let payload: { t?: string; s?: string };
    try {
      payload = JSON.parse(text ?? '{}') as { t?: string; s?: string };
    } catch {
      return;
    }
    if (!(payload.t === 'run' || (payload.t === 'task' && payload.s !== undefined && FINAL.has(payload.s)))) return;
    timer ??= setTimeout(() => {
      timer = undefined;
      wake();
    }, delayMs);
  });
  return {
    ready: listener.ready,
    async close() {
      clearTimeout(timer);
      await listener.close();
    },
  };
}
