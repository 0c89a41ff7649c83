/**
 * The note kind that marks a snapshot as damaged (its data: the ranges that cannot be
 * restored). A module of its own so that `coffer snapshots` (and `coffer backup`, through
 * it) can name it without loading repair's restore, volume and filesystem code.
 */
export const DAMAGE_NOTE = 'damage';
