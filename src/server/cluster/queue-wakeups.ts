/**
 * Wakes a worker's hand-out when the queue may have work for it, instead of at its next
 * once-a-second pass: when a run starts anywhere (its tasks were just queued) and when a task
 * ends anywhere (its host's slot, or a layer's, is free again). It hears the events every
 * process sends on `coffer_events` (event-relay.ts), its own included, and coalesces the
 * events of one turn of the event loop into one wake-up `delayMs` later (default 0: the
 * runner's dispatch coalesces what comes while a hand-out runs into one more). Every worker
 * hears every end, but only one that has a free slot and a queued task it could take goes
 * on to the dispatch lock (task-queue.ts). Measured in bench/workers.ts: the time from a
 * run's start to its first hand-out drops from up to the 1 s pass to the NOTIFY's round
 * trip; waiting 20 ms to gather a burst added 20 ms to every such hand-out (2026-11-26).
 */
import { listenForNotifications } from './event-relay.js';

const FINAL = new Set(['succeeded', 'warning', 'failed', 'cancelled', 'interrupted']);

export function wakeOnQueueChanges(url: string, wake: () => void, delayMs = 0): { close(): Promise<void>; ready: Promise<void> } {
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
