/**
 * @module blockdev
 * The one abstraction that carries Coffer (see DESIGN.md): a block device is a random-access,
 * read-only view of a virtual disk with its size, `read`, and an extent map saying which
 * ranges hold data and which read as zeros. Disk formats, live VMs, the repository's
 * snapshots and the NBD client all produce one; backup, restore, file browsing and verify
 * all consume one. This folder holds only the contract and small helpers on extents.
 */
export type { BlockDevice, Extent, ExtentKind, Placement } from './block-device.js';
export { coalesceExtents, wholeDeviceAsData, assertReadInBounds } from './extents.js';
export { bufferDevice } from './buffer-device.js';
export { planBlocks, type PlannedBlock } from './block-plan.js';
export { SliceDevice } from './slice-device.js';
export { isAllZero } from './all-zero.js';
export type { WritableBlockDevice } from './writable-block-device.js';
