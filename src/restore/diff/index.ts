/**
 * What changed between two snapshots, read from the repository alone. VM snapshots: each
 * disk's changed byte ranges found by comparing the two disk indexes entry by entry (chunk
 * ids are content hashes), skipping the index pages both share and reading no chunk
 * (disk-changes.ts, disks-diff.ts). Files: two trees walked side by side (change-walk.ts), paths
 * reported in restic's letters (+ - M T U); file snapshots compare chunk lists and skip every
 * directory whose tree id is the same in both (file-snapshots-diff.ts).
 */
export { diskChanges, type DiskChanges } from './disk-changes.js';
export { diffSnapshotDisks, type DiskDiff, type DisksDiff, type DisksDiffOptions } from './disks-diff.js';
export { walkChanges, emptyCounts, countsRow, type ChangeLetter, type PathChange, type ChangeCounts, type DiffProblem, type DiffSide, type NodeComparison, type ChangeSink } from './change-walk.js';
export { diffFileSnapshots, type FilesDiffSummary } from './file-snapshots-diff.js';
