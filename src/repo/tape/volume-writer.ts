import { createHash } from 'node:crypto';
import { pack as tarPack, type Pack } from 'tar-stream';
import { RecordWriter } from './record-writer.js';
import {
  encodeTapeIndex,
  encodeTapeLabel,
  INDEX_MEMBER,
  indexEntryLength,
  LABEL_MEMBER,
  MAX_INDEX_BYTES,
  memberLength,
  TAR_END_BYTES,
  USTAR_NAME_MAX,
  type TapeIndex,
  type TapeLabel,
  type TapeMember,
} from './tape-format.js';
import type { VolumeSink } from './volume-sink.js';

/** The longest index header any volume of a set can have (final, with a 6-digit volume count). */
function indexBaseLength(index: Omit<TapeIndex, 'members' | 'final' | 'volumes'>): number {
  const base = { ...index, members: [] };
  return Math.max(
    encodeTapeIndex({ ...base, final: false, volumes: null }).length,
    encodeTapeIndex({ ...base, final: true, volumes: 999_999 }).length,
  );
}

const roundUp = (n: number, unit: number) => Math.ceil(n / unit) * unit;

/**
 * Writes one volume of a tape set (tape-format.ts): the label, then members as long as they
 * fit in `capacity`, then the index and the end of the archive, in fixed records. The tar
 * stream comes from tar-stream; the offsets in the index are computed from the ustar layout
 * (a 512-byte header per member, data padded to 512) and checked against the bytes the
 * stream actually produced when the volume is finished.
 */
export class VolumeWriter {
  private readonly archive: Pack = tarPack();
  private readonly records: RecordWriter;
  private readonly pumped: Promise<number>;
  private position = 0;
  private readonly members: TapeMember[] = [];
  private indexLength: number;
  private pumpFailure: unknown;
  private rejectEntry: ((error: unknown) => void) | undefined;

  private constructor(
    private readonly sink: VolumeSink,
    readonly label: TapeLabel,
    private readonly snapshots: string[],
    private readonly capacity: number,
  ) {
    const records = new RecordWriter(sink, label.recordSize);
    this.records = records;
    this.indexLength = indexBaseLength({ format: 'coffer-tape-index', version: 1, tapeSet: label.tapeSet, sequence: label.sequence, snapshots });
    // The archive is pumped into the records with backpressure; its byte count checks the offsets.
    this.pumped = (async () => {
      let bytes = 0;
      for await (const chunk of this.archive as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        try {
          await records.write(chunk);
        } catch (error) {
          // Recorded before the loop's exit destroys the archive (which fails the entry in
          // progress with tar-stream's own "tar entry destroyed"): the sink's error is the one told.
          this.pumpFailure = error;
          this.rejectEntry?.(error);
          throw error;
        }
      }
      return bytes;
    })();
    this.pumped.catch(() => {});
  }

  /** Starts a volume on `sink` with its label. `capacity`: the most bytes the volume may take. */
  static async start(sink: VolumeSink, label: TapeLabel, snapshots: string[], capacity: number): Promise<VolumeWriter> {
    const writer = new VolumeWriter(sink, label, snapshots, capacity);
    await writer.add(LABEL_MEMBER, encodeTapeLabel(label), { force: true });
    return writer;
  }

  get name(): string {
    return this.sink.name;
  }

  /** Members written so far besides the label. */
  get objectCount(): number {
    return this.members.length - 1;
  }

  /** Whether a member of `size` bytes still fits, with the index and the end of the archive after it. */
  fits(name: string, size: number): boolean {
    const entry = indexEntryLength({ name, offset: this.position, size, sha256: '0'.repeat(64) }, this.members.length === 0);
    if (this.indexLength + entry > MAX_INDEX_BYTES) return false;
    const end = this.position + memberLength(size) + memberLength(this.indexLength + entry) + TAR_END_BYTES;
    return roundUp(end, this.label.recordSize) <= this.capacity;
  }

  /** Appends a member. Throws (a bug) when it does not fit and `force` is not set. */
  async add(name: string, data: Buffer, options: { force?: boolean } = {}): Promise<TapeMember> {
    if (name.length > USTAR_NAME_MAX || !/^[\x21-\x7e]+$/.test(name)) throw new Error(`tape member name ${JSON.stringify(name)} needs a pax header`);
    if (options.force !== true && !this.fits(name, data.length)) throw new Error(`member ${name} does not fit on volume ${this.label.sequence}`);
    const member: TapeMember = { name, offset: this.position, size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
    await this.entry(name, data);
    this.indexLength += indexEntryLength(member, this.members.length === 0);
    this.members.push(member);
    this.position += memberLength(data.length);
    return member;
  }

  /**
   * Writes the index (`final` on the set's last volume) and the end of the archive, pads the
   * last record and closes the sink. Returns the volume's length in bytes.
   */
  async finish(final: boolean): Promise<{ bytes: number; members: TapeMember[] }> {
    const index: TapeIndex = {
      format: 'coffer-tape-index',
      version: 1,
      tapeSet: this.label.tapeSet,
      sequence: this.label.sequence,
      final,
      volumes: final ? this.label.sequence : null,
      snapshots: this.snapshots,
      members: this.members,
    };
    const encoded = encodeTapeIndex(index);
    await this.entry(INDEX_MEMBER, encoded);
    this.position += memberLength(encoded.length);
    this.archive.finalize();
    const produced = await this.pumped;
    if (produced !== this.position + TAR_END_BYTES) throw new Error(`tar stream of ${produced} bytes where the layout says ${this.position + TAR_END_BYTES}`);
    const bytes = await this.records.finish();
    await this.sink.close();
    return { bytes, members: this.members };
  }

  private async entry(name: string, data: Buffer): Promise<void> {
    if (this.pumpFailure !== undefined) throw this.pumpFailure;
    // A sink that fails stops the pump, which rejects the entry in progress: its error, not a
    // wait for ever. (Not a Promise.race with the pump: every race would leave a reaction,
    // and the data it closes over, on a promise that stays pending for the whole volume.)
    try {
      await new Promise<void>((resolve, reject) => {
        this.rejectEntry = reject;
        this.archive.entry({ name, size: data.length, type: 'file', mode: 0o600, uid: 0, gid: 0, mtime: new Date(this.label.created) }, data, (error) => (error ? reject(error) : resolve()));
      });
    } catch (error) {
      throw this.pumpFailure ?? error;
    } finally {
      this.rejectEntry = undefined;
    }
  }
}
