/**
 * File browsing for the API: a snapshot's volumes, directory listings, one file's bytes (with
 * the headers a download or a preview needs, safe against hostile guest names), and a search
 * by name; two snapshots compared (restore's diff, one page of changed paths, under a time
 * limit); archives come from restore's tarTree/zipTree. The routes are thin over this.
 */
export { listSnapshotVolumes, openVolume, withVolume, listDirectory, describeNode, fileNode, fileBytes, findByName, type VolumeInfo, type EntryInfo, type OpenVolume, type FoundFile } from './snapshot-browser.js';
export { contentDisposition, sniffContentType, parseRange } from './download-headers.js';
export { diffSnapshots, type SnapshotDiffDocument, type SnapshotDiffOptions, type ChangeJson, type DiskJson, type VolumeJson, type DiffPaging } from './snapshot-diff.js';
