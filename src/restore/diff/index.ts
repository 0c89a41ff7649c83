/**
 * What changed between two snapshots, read from the repository alone. VM snapshots: each
 * disk's changed byte ranges found by comparing the two disk indexes entry by entry (chunk
 * ids are content hashes), skipping the index pages both share and reading no chunk
 * (disk-changes.ts, disks-diff.ts). Files: two trees walked side by side (change-walk.ts), paths
 * reported in restic's letters (+ - M T U); file snapshots compare chunk lists and skip every
 * directory whose tree id is the same in both (file-snapshots-diff.ts); the volumes of VM
 * snapshots have both filesystems walked where their bytes changed, a file's content judged
 * by where its data lies and, in changed blocks, by its bytes (volume-files-diff.ts,
 * filesystem-comparison.ts).
 */
export { diskChanges, type DiskChanges } from './disk-changes.js';
export { diffSnapshotDisks, type DiskDiff, type DisksDiff, type DisksDiffOptions } from './disks-diff.js';
export { emptyCounts, countsRow, type ChangeLetter, type PathChange, type ChangeCounts, type DiffProblem } from './change-walk.js';
export { diffFileSnapshots, type FilesDiffSummary } from './file-snapshots-diff.js';
export { diffSnapshotVolumes, type VolumeInfo, type VolumeFilesDiff, type VolumeDiffSink } from './volume-files-diff.js';
export type { ContentChecks } from './filesystem-comparison.js';
