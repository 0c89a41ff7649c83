export { extractTree, type ExtractOptions, type ExtractReport } from './extract-tree.js';
export { tarTree, type TarOptions, type TarReport } from './tar-tree.js';
export { zipTree, type ZipReport } from './zip-tree.js';
export { globToRegExp } from './name-glob.js';
export { safeName } from './safe-name.js';
export type { EntryProblem, TreeReport } from './safe-walk.js';
export { SnapshotFiles, type SnapshotVolume } from './snapshot-files.js';
export { affectedFiles, affectedFilesOfSnapshot, type AffectedFilesOptions, type VolumeDamage } from './affected-files.js';
export { openSnapshotFilesystems, FILE_TREE_VOLUME, type SnapshotFilesystems, type BrowsableVolume } from './snapshot-filesystems.js';
