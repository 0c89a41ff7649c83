/**
 * What changed between two snapshots, read from the repository alone. VM snapshots: each
 * disk's changed byte ranges found by comparing the two disk indexes entry by entry (chunk
 * ids are content hashes), skipping the index pages both share and reading no chunk
 * (disk-changes.ts, disks-diff.ts).
 */
export { diskChanges, type DiskChanges } from './disk-changes.js';
export { diffSnapshotDisks, type DiskDiff, type DisksDiff, type DisksDiffOptions } from './disks-diff.js';
