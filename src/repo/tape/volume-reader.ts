import { createHash } from 'node:crypto';
import { extract as tarExtract } from 'tar-stream';
import { CofferError, isCofferError } from '../../errors/index.js';
import { MAX_PLAINTEXT_SIZE } from '../format/envelope.js';
import {
  decodeTapeIndex,
  decodeTapeLabel,
  INDEX_MEMBER,
  LABEL_MEMBER,
  MAX_INDEX_BYTES,
  memberLength,
  OBJECT_MEMBER,
  PACKED_OBJECT_MEMBER,
  TAPE_FORMAT_VERSION_PACKS,
  type TapeIndex,
  type TapeLabel,
  type TapeMember,
} from './tape-format.js';
import type { VolumeSource } from './volume-sink.js';

/** Bounds on what a member may hold, checked before it is read (a tape is untrusted input). */
const MAX_LABEL_BYTES = 64 * 1024;
/** The largest sealed object: the plaintext limit plus the envelope's header and tag. */
const MAX_OBJECT_BYTES = MAX_PLAINTEXT_SIZE + 64;

/** What {@link readVolume} hands over for each member between the label and the index. */
export interface VolumeMember extends TapeMember {
  /** The member's bytes, or null when `wantData` declined them. */
  data: Buffer | null;
}

export interface ReadVolumeOptions {
  /** Whether to keep the bytes of a member (default: all). Every member is hashed either way. */
  wantData?: (name: string) => boolean;
  /** Stop after the label (and return no index). */
  labelOnly?: boolean;
  signal?: AbortSignal;
}

/**
 * Reads one volume front to back (tape-format.ts): checks that it starts with a label, that
 * every member is a repository object, then checks every member (name, offset, size,
 * SHA-256) against the index that closes the volume. `onMember` sees each object member as
 * it is read, before the index can vouch for it: a caller that stores them must not make
 * them visible before this resolves. A member that `onMember` finds corrupt is reported with
 * the volume and the member's offset. Throws `E_TAPE_INVALID` for a stream that is not a
 * whole Coffer volume (truncated, another archive, a member that contradicts the index).
 */
export async function readVolume(
  source: VolumeSource,
  onMember: (member: VolumeMember) => Promise<void>,
  options: ReadVolumeOptions = {},
): Promise<{ label: TapeLabel; index: TapeIndex | null }> {
  const where = source.name;
  const invalid = (why: string, cause?: unknown) => new CofferError('E_TAPE_INVALID', `${where}: ${why}`, { subject: { path: where }, cause });
  const input = source.open();
  const extract = tarExtract();
  input.once('error', (error) => extract.destroy(error));
  input.pipe(extract);
  let label: TapeLabel | undefined;
  let index: TapeIndex | null = null;
  const read: TapeMember[] = [];
  let offset = 0;
  try {
    for await (const entry of extract) {
      if (options.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'interrupted');
      const { name, size, type } = entry.header;
      if (label === undefined && name !== LABEL_MEMBER) throw invalid(`not a Coffer tape volume (its first member is ${JSON.stringify(name)}, not ${LABEL_MEMBER})`);
      if (index !== null) throw invalid(`member ${JSON.stringify(name)} follows the index`);
      if (type !== 'file' || entry.header.pax != null) throw invalid(`member ${JSON.stringify(name)} at offset ${offset} is not a plain file member`);
      const isLabel = name === LABEL_MEMBER && label === undefined;
      const isIndex = name === INDEX_MEMBER;
      const isObject = OBJECT_MEMBER.test(name) || (label?.version === TAPE_FORMAT_VERSION_PACKS && PACKED_OBJECT_MEMBER.test(name));
      if (!isLabel && !isIndex && !isObject) throw invalid(`member ${JSON.stringify(name)} at offset ${offset} is not a repository object`);
      const limit = isLabel ? MAX_LABEL_BYTES : isIndex ? MAX_INDEX_BYTES : MAX_OBJECT_BYTES;
      if (size > limit) throw invalid(`member ${name} at offset ${offset} claims ${size} bytes (at most ${limit})`);
      const keep = isLabel || isIndex || (options.wantData?.(name) ?? true);
      const hash = createHash('sha256');
      const pieces: Buffer[] = [];
      for await (const piece of entry as AsyncIterable<Buffer>) {
        hash.update(piece);
        if (keep) pieces.push(piece);
      }
      const member: TapeMember = { name, offset, size, sha256: hash.digest('hex') };
      offset += memberLength(size);
      if (isLabel) {
        label = decodeTapeLabel(Buffer.concat(pieces), where);
        read.push(member);
        if (options.labelOnly === true) break;
      } else if (isIndex) {
        index = decodeTapeIndex(Buffer.concat(pieces), where);
      } else {
        read.push(member);
        try {
          await onMember({ ...member, data: keep ? Buffer.concat(pieces) : null });
        } catch (error) {
          // (An error that already names its volume is about an earlier member, told as it is.)
          if (isCofferError(error, 'E_CORRUPT_OBJECT') && error.subject.path === undefined) {
            throw new CofferError('E_CORRUPT_OBJECT', `${where}: member ${name} at offset ${member.offset}: ${error.message}`, { subject: { path: where, object: name, offset: member.offset }, cause: error });
          }
          throw error;
        }
      }
    }
  } catch (error) {
    if (isCofferError(error)) throw error;
    // Past the index and the end-of-archive blocks: bytes that are no tar header, such as the
    // rest of a block device the tape was written to, end the volume, as they do for GNU tar.
    // (A well-formed member there is still refused above.)
    if (index === null) throw invalid(`not a readable tar archive (${error instanceof Error ? error.message : String(error)})`, error);
  } finally {
    input.unpipe(extract);
    input.destroy();
    extract.destroy();
  }
  if (label === undefined) throw invalid('empty: no tar member at all');
  if (options.labelOnly === true) return { label, index: null };
  if (index === null) throw invalid('ends before its index (truncated, or the export was interrupted)');
  if (index.tapeSet !== label.tapeSet || index.sequence !== label.sequence) throw invalid('its index belongs to another volume than its label');
  const count = Math.max(read.length, index.members.length);
  for (let i = 0; i < count; i++) {
    const got = read[i];
    const listed = index.members[i];
    if (got === undefined || listed === undefined) throw invalid(`the index lists ${index.members.length} members, the volume holds ${read.length}`);
    for (const field of ['name', 'offset', 'size', 'sha256'] as const) {
      if (got[field] !== listed[field]) throw invalid(`member ${got.name} at offset ${got.offset} does not match the index (${field} ${String(got[field])}, the index says ${String(listed[field])})`);
    }
  }
  return { label, index };
}
