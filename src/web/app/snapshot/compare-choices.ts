/**
 * Which snapshots a snapshot's page offers to compare with ("Compare with…"): the VM's
 * snapshots of the same kind (disk snapshots with disk snapshots, file snapshots with file
 * snapshots: the server refuses two kinds), newest first, without the snapshot itself; and the
 * one proposed first: its parent (what its incremental was taken on), else the newest one
 * taken before it — "what changed since the previous backup".
 */
export interface SnapshotItem {
  id: string;
  time: string;
  kind?: 'disk' | 'files';
  parent?: string | null;
}

export interface CompareChoice {
  id: string;
  time: string;
  /** `parent`: the snapshot's parent; `previous`: the newest one before it (when it has no parent offered). */
  mark?: 'parent' | 'previous';
}

/** The snapshots `current` may be compared with, and the one proposed (`preferred`, undefined when none). */
export function compareChoices(current: { id: string; time: string; kind: 'disk' | 'files'; parent?: string | null }, items: readonly SnapshotItem[]): { choices: CompareChoice[]; preferred: string | undefined } {
  const others = items.filter((s) => s.id !== current.id && (s.kind ?? 'disk') === current.kind).sort((x, y) => (x.time < y.time ? 1 : x.time > y.time ? -1 : 0));
  const parent = current.parent == null ? undefined : others.find((s) => s.id === current.parent);
  const previous = parent ?? others.find((s) => s.time < current.time);
  const mark = parent !== undefined ? 'parent' : 'previous';
  return { choices: others.map((s) => ({ id: s.id, time: s.time, ...(s.id === previous?.id ? { mark } : {}) })), preferred: previous?.id };
}
