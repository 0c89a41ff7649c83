/**
 * Audit entry ids that sort by time: 12 hex digits of milliseconds since the epoch, 6 of a
 * per-process counter (entries of one millisecond keep their order), 8 random (several
 * servers, #10, never collide). Paging by id is paging by time, with no database sequence.
 */
import { randomBytes } from 'node:crypto';

let counter = 0;

export function auditId(at: number): string {
  counter = (counter + 1) % 0x1000000;
  return `${at.toString(16).padStart(12, '0')}${counter.toString(16).padStart(6, '0')}${randomBytes(4).toString('hex')}`;
}
