/**
 * Where a tape set's volumes are written and read, reduced to what a tape drive, a virtual
 * tape library and a plain file all offer: a volume is written front to back in records of
 * one fixed size and read front to back. Nothing here seeks.
 */
import type { Readable } from 'node:stream';

/** One volume being written. */
export interface VolumeSink {
  /** Where it goes (a file path, a device), for messages and the media catalog. */
  readonly name: string;
  /**
   * Writes one record: exactly the set's record size, in one write (a tape drive in fixed
   * block mode takes each write as one block). Throws `E_NO_SPACE` when the medium is full,
   * `E_TARGET_UNWRITABLE` otherwise. Not called concurrently.
   */
  writeRecord(record: Uint8Array): Promise<void>;
  /** Ends the volume: flushed and closed (on a tape drive, closing writes the file mark). */
  close(): Promise<void>;
}

/** Opens the volumes of a tape set for writing, in order (1, 2, …); each after the previous one closed. */
export interface VolumeTarget {
  open(sequence: number): Promise<VolumeSink>;
  /**
   * After a failed export: removes what this target wrote where it can (volume files; a tape
   * keeps its volumes, closed with their index, which an import reports as an incomplete set).
   * Optional; never throws.
   */
  discard?(): Promise<void>;
  /**
   * After the whole set was written: puts volumes written under temporary names in place of
   * the files they replace (an `--overwrite` export keeps the old set until the new one is
   * complete). Optional.
   */
  commit?(): Promise<void>;
}

/** A volume to read: a name for messages, and its bytes front to back (opened once per read). */
export interface VolumeSource {
  readonly name: string;
  open(): Readable;
}
