/**
 * Every migration, in order. Add a new one at the end with the next id; never edit or remove
 * one that has been released.
 */
import type { Migration } from '../migration.js';
import { foundation } from './0001-foundation.js';
import { tasks } from './0010-tasks.js';

export const MIGRATIONS: readonly Migration[] = [
  foundation,
  tasks,
];
