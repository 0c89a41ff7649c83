/**
 * @module testing
 * Helpers for Coffer's own tests, never imported by the product: real test disks built by real
 * tools (sfdisk, mke2fs, mtools, mkntfs, mkfs.xfs, LVM) and cached across test files and
 * processes, the one file tree every filesystem fixture holds, deterministic pseudo-random
 * bytes, a check that the tools a test needs are installed, differencing VHDs (which qemu-img
 * cannot make) made from dynamic ones (vhd-differencing.ts), and a running QEMU with disks and a
 * QMP socket (qemu-vm.ts), a booted Linux guest running the real QEMU guest agent
 * (agent-guest.ts), a private libvirtd with test domains (libvirt.ts), and a format 2
 * repository a repacking prune moved chunks in (repacked-repository.ts), and the expected content
 * of a big disk kept as its data pieces (sparse-content.ts).
 */
export {
  fixtureDir,
  buildExt4Disk,
  buildSparseDiskBeyond4G,
  deriveDisk,
  seededBytes,
  writeSeededFile,
  requireTools,
  runTool,
  cachedFixture,
} from './disks.js';
export type { PartitionedDisk, Ext4DiskOptions } from './disks.js';
export { buildCowd, cowdDescriptor, type CowdOptions } from './cowd.js';
export { makeDifferencingVhd, rewriteVhdChecksum, type VhdLocator } from './vhd-differencing.js';
export { makeDifferencingVhdx, vhdxDataWriteGuid, vhdxMetadataItem, vhdxRegion, VHDX_BAT_GUID, VHDX_HEADERS, VHDX_METADATA_GUID, VHDX_REGION_TABLES } from './vhdx-differencing.js';
export { writeFsTree, FS_TREE_LINKS, FS_TREE_TIME, type FsTreeOptions } from './fs-tree.js';
export {
  buildGptVolumesDisk,
  buildGpt4kDisk,
  buildMbrVolumesDisk,
  buildWholeDiskExt4,
  buildWholeDiskFat,
  buildWholeDiskNtfs,
  buildLvmOneDisk,
  buildLvmTwoDisks,
  lvPlacement,
  bytes,
  fixtureUuid,
  GPT_TYPES,
  GPT_DISK_PARTITIONS,
} from './volume-disks.js';
export type { LvmFixture, LvmOracle, LvmReportRow } from './volume-disks.js';
export { buildFatImage, readFatWithMtools, runMtools, FAT_SMALL_TREE, type FatImageOptions, type MtoolsEntry } from './fat-image.js';
export { describeTree, type TreeEntry } from './describe-tree.js';
export { buildExtImage, buildHostileExtImage, buildByteNamesExtImage, BYTE_NAMES, HUGE_SPARSE_FILE, type ExtImageOptions, type ExtVariant } from './ext-image.js';
export { debugfsTree, type OracleNode, type OracleTree } from './ext-oracle.js';
export { buildXattrsExtImage, writeXattrTree, XATTR_BIG_VALUE } from './xattr-tree.js';
export { buildNtfsImage, ntfsExtrasImage, ntfsStreamsImage, NTFS_STREAMS, NTFS_SERIAL, type NtfsImageOptions } from './ntfs-image.js';
export { damageNtfsStream, ntfs3gAttrib, ntfsCat, ntfsInfo, NTFS_STREAMS_PATHS, type NtfsInfo } from './ntfs-oracle.js';
export { buildXfsImage, buildByteNamesXfsImage, xfsFragmentedImage, type XfsImageOptions } from './xfs-image.js';
export { xfsDbTree, xfsDbGeometry, xfsDbFileBytes, type XfsDbNode, type XfsDbGeometry } from './xfs-db.js';
export { xfsDbAttrs, type XfsDbAttr, type XfsDbAttrFork } from './xfs-db-attrs.js';
export { allAttrs, buildXattrsXfsImage, expectedXattrs, XFS_SELINUX_LABEL, XFS_XATTRS_TREE, type XfsAttrRecipe, type XfsXattrsEntry } from './xfs-xattrs-image.js';
export { buildFilesVmDisk, type FilesVmDisk, type FilesVmDiskOptions } from './vm-disks.js';
export { startTestVm, type TestVm, type TestVmDisk, type TestVmDiskSpec, type TestVmOptions } from './qemu-vm.js';
export { startTestLibvirt, TEST_OVMF, type TestLibvirt, type TestDomain, type TestDomainDisk, type TestDomainDiskSpec } from './libvirt.js';
export { startDaemon, makeTempDir, type Daemon } from './daemons.js';
export { makeDiskTempDir } from './disk-temp-dir.js';
export { mountSmallExt4, type SmallExt4 } from './small-ext4.js';
export { tempFolders } from './temp-folders.js';
export { closedAfter } from './closed-after.js';
export { seededRandom, withDeadline } from './fuzz-kit.js';
export { guestKernel, debianPackage, unpackDebianPackage, GUEST_KERNEL_META_PACKAGE, type GuestKernel } from './debian-packages.js';
export { startAgentGuest, agentGuestInitramfs, agentGuestFilesystem, guestOverwriteScript, readGuestOverwrite, imageStartSha256, type AgentGuest, type AgentGuestOptions } from './agent-guest.js';
export { mountSmallFilesystem } from './small-filesystem.js';
export { buildBootDisk, BOOT_MARK } from './boot-disk.js';
export { buildUefiBootDisk, UEFI_BOOT_MARK } from './uefi-boot-disk.js';
export { buildSeSparse, seSparseDescriptor, allocatedEntry, type SeSparseGrain, type SeSparseOptions } from './sesparse.js';
export { startCephS3, freePort, MEMSTORE_BYTES, type CephS3, type CephS3Options } from './ceph-s3.js';
export { startS3RequestCounter, countByKind, type S3RequestCounter, type S3Request, type S3RequestKind } from './s3-request-counter.js';
export { startTestRepoServer, type TestRepoServer, type TestTokenSpec } from './repo-server.js';
export { startSmtpSink, type SmtpSink, type ReceivedMail } from './smtp-sink.js';
export { startHttpReceiver, type HttpReceiver, type ReceivedRequest } from './http-receiver.js';
export { startPostgres, POSTGRES_PACKAGES, type TestPostgres } from './postgres.js';
export { networkNamespacesWork, createNetworkNamespace, removeNetworkNamespaces, namespacesNetwork, type NetworkNamespace } from './network-namespaces.js';
export { backupBytes, snapshotDiskBytes } from './snapshot-bytes.js';
export { SparseContent, type ContentPiece } from './sparse-content.js';
export { flipByte } from './flip-byte.js';
export { backupFile, withRepo } from './repo-session.js';
export { repackRepository, rewriteFrames, packSizes, RangedReadLog, assertEachByteOnce, type RepackedRepository, type RangedRead } from './repacked-repository.js';
export { cephRepositories } from './ceph-repositories.js';
