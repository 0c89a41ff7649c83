/**
 * @module glob
 * The glob syntax shared by file backup's excludes and file restore's includes/excludes, so
 * that a pattern means the same thing on the way in and on the way out. Depends on nothing.
 */
export { escapeRegExp, globSource } from './path-glob.js';
