import type { AffectedRange, DamagedObject } from '../../repo/index.js';

/** How verify and repair print a damaged object: `DAMAGED chunk 0123…cdef… (missing): message`. */
export function damagedLine(damage: DamagedObject): string {
  return `DAMAGED ${damage.kind} ${damage.id.slice(0, 16)}… (${damage.problem}): ${damage.message}`;
}

/** How verify and repair print the bytes of a snapshot's disk that damage makes unrestorable. */
export function affectedLine(hit: AffectedRange): string {
  return `AFFECTED snapshot ${hit.snapshot.slice(0, 8)} (vm ${hit.vm}, ${hit.time}) disk ${hit.disk} bytes ${hit.ranges.map((r) => `${r.start}-${r.end - 1}`).join(', ')}`;
}
