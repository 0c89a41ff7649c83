/**
 * A zero-copy read a served device may offer beside `read()` (format 2 snapshots do:
 * `SnapshotDisk.readPinned`): the bytes of a range as views into memory the device keeps
 * (decoded frames), held still until `release()`. The server writes the views to the socket
 * as they are and releases them once the socket's write of the reply has completed (its
 * callback), never before: until then the kernel or Node's write queue may still point into
 * that memory. A device that cannot answer a range this way returns `undefined` and the
 * server falls back to `read()` and `extents()`.
 */
export interface PinnedRead {
  /** The range in order: runs of zeros (no `data`) and runs of data (`data`: views, `length` bytes in all). */
  readonly runs: readonly PinnedRun[];
  /** Lets the device reuse the memory the views point into (idempotent). */
  release(): void;
}

export interface PinnedRun {
  readonly offset: number;
  readonly length: number;
  readonly data?: readonly Uint8Array[];
}

export interface PinnedReadDevice {
  readPinned(offset: number, length: number): Promise<PinnedRead | undefined>;
}

/** Whether `device` offers {@link PinnedReadDevice.readPinned}. */
export function offersPinnedReads(device: object): device is PinnedReadDevice {
  return typeof (device as Partial<PinnedReadDevice>).readPinned === 'function';
}
