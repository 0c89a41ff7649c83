/**
 * Last night's answer per VM: a run holds every attempt of a VM's backup (a failed one and its
 * retry), but whether the VM is protected is its last attempt's result, as the server counts a
 * run's state. One line per VM (or per task without a VM), the highest attempt, in the run's
 * order.
 */
export interface AttemptLike {
  id: string;
  kind: string;
  vm: string | null;
  attempt: number;
}

export function lastAttempts<T extends AttemptLike>(tasks: readonly T[]): T[] {
  const last = new Map<string, T>();
  for (const task of tasks) {
    const key = task.vm === null ? `task:${task.id}` : `${task.kind}:${task.vm}`;
    const seen = last.get(key);
    if (seen === undefined || task.attempt > seen.attempt) last.set(key, task);
  }
  const kept = new Set(last.values());
  return tasks.filter((t) => kept.has(t));
}
