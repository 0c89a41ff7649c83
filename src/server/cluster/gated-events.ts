/**
 * An emitter that repeats some events of another while a condition holds: what a server
 * hears of every task and run, passed on to the parts only the leader runs (the jobs' upkeep)
 * while it leads (leader-lease.ts). Listeners of the result never hear what was emitted while
 * the gate was shut.
 */
import { EventEmitter } from 'node:events';

export function gatedEvents(source: EventEmitter, names: readonly string[], open: () => boolean): EventEmitter {
  const gated = new EventEmitter();
  for (const name of names) source.on(name, (...args: unknown[]) => {
    if (open()) gated.emit(name, ...args);
  });
  return gated;
}
