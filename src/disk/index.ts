/**
 * @module disk
 * Virtual disk formats as block devices, and writers to put disks back. Images are opened by
 * their content ({@link openDiskImage}), with their backing chains; each format lives in its
 * own folder with its on-disk layout documented beside the parser. Knows nothing of the
 * repository.
 */
export { RawImage } from './raw-image.js';
export { openDiskImage, MAX_CHAIN_DEPTH } from './open-image.js';
export { detectFormat } from './detect.js';
export { ImageFile } from './image-file.js';
export type { DiskImage, DiskFormat, BackingOpener, InternalSnapshot, OpenImageOptions } from './disk-image.js';
export { DISK_FORMATS } from './disk-image.js';
export { openRawTarget, type DiskTarget } from './raw-target.js';
export { OutputStream, carriesData } from './output-stream.js';
export { isNoSpace, targetCall, targetError, type TargetErrorOptions } from './target-error.js';
export { AlignedBuffers, takesDirectWrites } from './direct-writes.js';
export { DirectAppender } from './direct-appender.js';
export { openDiskTarget, TARGET_FORMATS, TARGET_EXTENSIONS, type TargetFormat } from './open-target.js';
export { copyDevice, type CopyProgress } from './copy-device.js';
