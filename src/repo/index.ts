/**
 * @module repo
 * The repository: a self-describing, content-addressed store of chunks, disk index pages, file
 * trees (file snapshots) and snapshot manifests on a {@link Backend} (a local directory or an S3-compatible bucket), encrypted and
 * compressed by {@link ObjectCodec}, with the CPU work on a {@link CodecPool} of worker
 * threads; protection markers beside the manifests, and the retention policies that decide
 * which snapshots to keep (`retention/`), the replication of snapshots to another repository
 * (`sync/`, with other keys too), and tape sets (`tape/`: self-contained tar streams of
 * snapshots for tapes and files, docs/tape-format.md). The byte layout of everything it writes is in docs/repository-format.md and in
 * the `format/` files. It knows nothing of VMs, disk formats or filesystems.
 */
export type { Backend, BackendEntry, ObjectLockStore, Retention, RetentionMode } from './backend/backend.js';
export { LocalBackend } from './backend/local-backend.js';
export { readRange } from './backend/read-range.js';
export { ForwardingBackend } from './backend/forwarding-backend.js';
export { FaultyBackend, type Fault } from './backend/faulty-backend.js';
export { S3Backend, S3_DEFAULTS, type S3BackendOptions } from './backend/s3-backend.js';
export { isS3Location, parseS3Location, type S3Location } from './backend/s3-location.js';
export { HttpBackend, HTTP_DEFAULTS, type HttpBackendOptions } from './backend/http-backend.js';
export { isHttpLocation, parseHttpLocation, type HttpLocation } from './backend/http-location.js';
export { absoluteLocation } from './absolute-location.js';
export { backendForLocation, cacheDirectoryOf, openRepositoryAt, type LocationOptions, type OpenLocationOptions, type RepoServerAccess } from './open-location.js';
export { normalizeFingerprint, HttpsTransport, type HttpsTransportOptions, type HttpAnswer } from './backend/https-transport.js';
export { checkedKey } from './backend/backend-key.js';
export { recordChunkDeletions, CHUNK_CACHE_MAX_AGE_MS, type ChunkCacheOptions } from './chunk-cache.js';
export { ObjectCodec, type ObjectId, type CodecSettings } from './codec.js';
export { CodecPool, type BlockHash } from './codec-pool.js';
export { blockFingerprint, FINGERPRINT_BYTES, FINGERPRINT_KEY_BYTES } from './block-fingerprint.js';
export { FastCdc, FILE_CHUNK_SIZES, type ChunkSizes } from './fastcdc.js';
export { ObjectKind } from './format/envelope.js';
export { ZERO_ENTRY, isZeroEntry, ENTRIES_PER_PAGE } from './format/index-page.js';
export type { RepositoryConfig, ObjectLockPolicy } from './format/config.js';
export { MAX_LOCK_DAYS } from './format/config.js';
export * from './lock/index.js';
export { pageCount, type FilesRecord, type FileWarning, type DiskRecord, type ChangeTrackingRecord, type ConsistencyRecord, type SnapshotManifest, type SnapshotStats, type VmDefinition } from './format/manifest.js';
export { DEFAULT_KDF, kdfForNewKeys, TESTONLY_WEAKEN_KDF, WEAKEST_KDF, type KdfParams } from './keys/key-file.js';
export { Repository, initRepository, openRepository, REPOSITORY_DEFAULTS, type InitOptions, type OpenOptions, type KeyInfo } from './repository.js';
export { saveSnapshot, listSnapshots, loadSnapshot, loadStoredSnapshot, deleteSnapshot, refuseLocked, resolveSnapshot, resolveSnapshotId, skipDamaged, type Snapshot } from './snapshots.js';
export { changedTags, checkTags, listTagRecords, newestTagRecord, readTagRecord, setSnapshotTags, snapshotOfTagRecord, storedManifest, TAG_RECORD_KEY, withTagRecords, writeTagRecord, type TagChange, type TagOutcome, type TagRecord } from './snapshot-tags.js';
export { listProtections, protectionOf, protectSnapshot, unprotectSnapshot, type Protection } from './protection.js';
export { listRetentionCandidates, type SnapshotCandidate } from './retention-candidates.js';
export * from './retention/index.js';
export { DiskIndexReader, DiskIndexWriter } from './disk-index.js';
export { chunksPerImageFrame, PackWriter, PACK_DEFAULTS } from './pack-writer.js';
export { MAX_CHUNKS_PER_FRAME } from './format/pack.js';
export { ChunkIndex, MAX_SEGMENTS } from './chunk-index.js';
export { MovedChunks } from './moved-chunks.js';
export { CurrentPlaces } from './current-places.js';
export { packRemovalsSince, type PackRemovals } from './pack-removals.js';
export { FrameReader, imageFrameSlotBytes, type PinnedChunk } from './frame-reader.js';
export { readFrameSpans, type FrameToRead, type OpenedSpanFrame, type FrameSpanOptions, type RemoteReads } from './frame-spans.js';
export { chunkInFrame } from './frame-codec.js';
export { ChunksById } from './chunks-by-id.js';
export { rebuildChunkIndex, type RebuildIndexReport } from './rebuild-chunk-index.js';
export { entryId, isLocatedEntry, decodeLocatedEntry, LOCATED_ENTRY_SIZE, type ChunkLocation } from './format/located-entry.js';
export { NEWEST_FORMAT_VERSION, FORMAT_VERSIONS, type FormatVersion } from './format/config.js';
export { putFileTree, getFileTree, walkFileTrees, type FileChunkVisit, type TreeDamage } from './file-trees.js';
export { entryXattrs, isSafeEntryName, compareNames, TREE_ENTRY_TYPES, type TreeEntry, type TreeEntryType, type ContentPiece, type FileTree } from './format/file-tree.js';
export { listQuarantined, quarantineChunk } from './damage.js';
export { PACKS_PREFIX, REMOVED_PACKS_PREFIX, SEGMENTS_PREFIX, packKey, segmentKey } from './layout.js';
export { CHUNKS_PREFIX, INDEXES_PREFIX, SNAPSHOTS_PREFIX, PROTECTED_PREFIX, TREES_PREFIX, idFromKey } from './layout.js';
export { CONFIG_KEY, DELETIONS_KEY, KEYS_PREFIX, QUARANTINE_PREFIX, NOTES_PREFIX, TAGS_PREFIX, VERIFICATIONS_PREFIX, LEASES_PREFIX } from './layout.js';
export { isUnwritableStorage, verifyRepository, type VerifyOptions, type VerifyReport, type VerifyProgress, type DamagedObject, type AffectedRange, type SnapshotVerification } from './verify.js';
export { repositoryStats, type RepositoryStats } from './stats.js';
export { addSnapshotNote, listSnapshotNotes, deleteSnapshotNotes, deleteSnapshotNote, LASTING_NOTE_KINDS, type StoredSnapshotNote } from './snapshot-notes.js';
export type { SnapshotNote } from './format/snapshot-note.js';
export { readSnapshotRecords, testRestoreOf, verificationOf, TEST_RESTORE_NOTE, type SnapshotRecords, type TestRestoreRecord, type TestRestoreBootRecord, type SnapshotVerificationRecord, type TapeRecord } from './snapshot-records.js';
export { addVerificationRecord, listVerificationRecords, lastVerifiedLookup, parseVerificationSubset, recordSnapshotVerifications, VERIFICATION_NOTE } from './verification-log.js';
export { subsetContains, type VerificationRecord, type VerificationSubset } from './format/verification-record.js';
export { pruneRepository, type PruneOptions, type PruneReport, type PruneProgress } from './prune.js';
export { SPACE_RESERVE_BYTES } from './space-reserve.js';
export { REPACK_DEFAULTS } from './pack-plan.js';
export type { PackSweepReport } from './pack-sweep.js';
export { verifyStored, parseFingerprint, type StoredVerifyOptions, type StoredVerifyReport, type StoredVerifyProgress, type StoredProblem } from './digests/verify-stored.js';
export { storedDigestKeyFingerprint } from './digests/stored-key.js';
export { coverStoredObjects, type CoverReport } from './digests/cover-stored.js';
export { DigestRecordingBackend, digestRecorderOf } from './digests/digest-recording-backend.js';
export { DIGESTS_PREFIX, DIGEST_KEY_KEY } from './layout.js';
export { acquireBackupLease, acquirePruneLease, listLeases, HeldLease, type LeaseInfo, type LeaseOptions } from './leases.js';
export { LEASE_EXPIRY_MS, LEASE_REFRESH_MS, type Lease, type LeaseKind } from './format/lease.js';
export { IdPrefixSet } from './id-prefix-set.js';
export { salvageSnapshot, type ZeroedRanges } from './salvage.js';
export { RateLimitedBackend, type BandwidthLimits } from './backend/rate-limited-backend.js';
export { syncSnapshots, type SyncOptions } from './sync/sync-snapshots.js';
export type { SyncReport, SyncProgress, SyncCounters, SyncedSnapshot } from './sync/sync-report.js';
export { SYNCED_FROM_NOTE, parseSyncedFrom, syncedFromNotes, type SyncedFrom } from './sync/synced-from.js';
export { exportTape, TAPE_NOTE, TAPE_DEFAULTS, type TapeExportOptions, type TapeExportReport, type TapeExportProgress, type TapeNoteData } from './tape/tape-export.js';
export { importTape, orderVolumes, type TapeImportOptions, type TapeImportReport } from './tape/tape-import.js';
export { listTape, missingFromSet, type TapeVolumeListing } from './tape/tape-list.js';
export { readTapeCatalog, type TapeCatalogEntry, type TapeCatalogOptions } from './tape/tape-catalog.js';
export { fileVolumeTarget, fileVolumeSource, type FileVolumeOptions } from './tape/file-volumes.js';
export type { VolumeSink, VolumeSource, VolumeTarget } from './tape/volume-sink.js';
export { TAPE_FORMAT_VERSION, TAPE_FORMAT_VERSION_PACKS, isValidRecordSize, type TapeLabel, type TapeIndex, type TapeMember } from './tape/tape-format.js';
