/**
 * What happened to a snapshot after it was taken, from its notes (docs/repository-format.md
 * §11): its newest verification (the share of its chunks read back, and when all of them
 * were), its newest test restore (passed or not, and why; the VM booted from it or not), and the tape sets holding it (the
 * media catalog, docs/tape-format.md §7). Read by `coffer snapshots` and the server's API
 * alike; a note whose data is not of the expected shape is left out.
 */
import { plainConsoleText } from '../names/index.js';
import type { SnapshotNote } from './format/snapshot-note.js';
import type { Repository } from './repository.js';
import { listSnapshotNotes } from './snapshot-notes.js';
import { TAPE_NOTE, type TapeNoteData } from './tape/tape-export.js';
import { VERIFICATION_NOTE } from './verification-log.js';

/** The note kind a test restore's report is stored under (`coffer test-restore`, the server's test-restore task). */
export const TEST_RESTORE_NOTE = 'test-restore';

/** A verification note: how much of the snapshot was read back and checked. */
export interface SnapshotVerificationRecord {
  time: string;
  chunks: number;
  verifiedChunks: number;
  /** When the last of its chunks was verified (every chunk read back), or null while only a share was. */
  fullyVerifiedAt: string | null;
}

/** A test restore's outcome. */
export interface TestRestoreRecord {
  time: string;
  passed: boolean;
  durationMs: number;
  failures: string[];
  warnings: string[];
  /** The VM booted from the backup (`--boot`, a job's `boot: true`), or null when it was not booted. */
  boot: TestRestoreBootRecord | null;
}

/** A test restore's boot check: whether the VM came up, on what, and its serial console's last lines. */
export interface TestRestoreBootRecord {
  passed: boolean;
  /** The text waited for on the serial console (`login:`). */
  expect: string | null;
  /** The QEMU machine type (`q35`, `pc-i440fx-7.2`…). */
  machine: string | null;
  accel: 'kvm' | 'tcg' | null;
  /** The firmware it started; null in notes written before the report named it (those booted BIOS). */
  firmware: 'bios' | 'uefi' | null;
  /** UEFI firmware with Secure Boot enforced. */
  secureBoot: boolean;
  /** Seconds from QEMU's start to the text, when it appeared. */
  secondsToText: number | null;
  /** Why it failed. */
  reason: string | null;
  /** The serial console's last lines ({@link BOOT_SERIAL_TAIL_LINES} at most), trailing blank lines dropped. */
  serialTail: string;
}

/** Lines of the serial console a record keeps (the report stores more). */
export const BOOT_SERIAL_TAIL_LINES = 12;
/** And at most this many characters of them, the end kept: a console without newlines stays small. */
const BOOT_SERIAL_TAIL_CHARS = 4096;

/** A tape set holding the snapshot. */
export interface TapeRecord {
  tapeSet: string | null;
  written: string;
  volumes: { sequence: number; name: string }[];
  imported: boolean;
}

export interface SnapshotRecords {
  verification: SnapshotVerificationRecord | null;
  testRestore: TestRestoreRecord | null;
  tapes: TapeRecord[];
}

const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []);

/** A verification note's figures, or undefined when the note is not one. */
export function verificationOf(note: Pick<SnapshotNote, 'time' | 'data'>): SnapshotVerificationRecord | undefined {
  const data = note.data as { chunks?: unknown; verifiedChunks?: unknown; fullyVerifiedAt?: unknown } | null;
  if (typeof data !== 'object' || data === null || typeof data.chunks !== 'number' || typeof data.verifiedChunks !== 'number') return undefined;
  return { time: note.time, chunks: data.chunks, verifiedChunks: data.verifiedChunks, fullyVerifiedAt: typeof data.fullyVerifiedAt === 'string' ? data.fullyVerifiedAt : null };
}

/** A test-restore note's outcome, or undefined when the note is not one. */
export function testRestoreOf(note: Pick<SnapshotNote, 'time' | 'data'>): TestRestoreRecord | undefined {
  const data = note.data as { passed?: unknown; durationMs?: unknown; failures?: unknown; warnings?: unknown; boot?: unknown } | null;
  if (typeof data !== 'object' || data === null || typeof data.passed !== 'boolean') return undefined;
  return {
    time: note.time, passed: data.passed, durationMs: typeof data.durationMs === 'number' ? data.durationMs : 0, failures: strings(data.failures), warnings: strings(data.warnings),
    boot: bootOf(data.boot),
  };
}

/**
 * The boot check of a test-restore note (src/restore/test-restore/report.ts `BootResult`), or
 * null when there was none or it is not one (no boolean `passed`); a field of the wrong type
 * reads as unknown (null).
 */
function bootOf(value: unknown): TestRestoreBootRecord | null {
  if (typeof value !== 'object' || value === null) return null;
  const boot = value as { passed?: unknown; expect?: unknown; machine?: unknown; accel?: unknown; firmware?: unknown; secondsToText?: unknown; reason?: unknown; serialTail?: unknown };
  if (typeof boot.passed !== 'boolean') return null;
  const firmware = (typeof boot.firmware === 'object' && boot.firmware !== null ? boot.firmware : {}) as { kind?: unknown; secureBoot?: unknown };
  const kind = firmware.kind === 'bios' || firmware.kind === 'uefi' ? firmware.kind : null;
  const text = (v: unknown) => (typeof v === 'string' ? v : null);
  return {
    passed: boot.passed,
    expect: text(boot.expect),
    machine: text(boot.machine),
    accel: boot.accel === 'kvm' || boot.accel === 'tcg' ? boot.accel : null,
    firmware: kind,
    secureBoot: kind === 'uefi' && firmware.secureBoot === true,
    secondsToText: typeof boot.secondsToText === 'number' && Number.isFinite(boot.secondsToText) && boot.secondsToText >= 0 ? boot.secondsToText : null,
    reason: text(boot.reason),
    serialTail: typeof boot.serialTail === 'string' ? lastLines(boot.serialTail) : '',
  };
}

/** The console's last lines, control characters (terminal escapes) removed, bounded in lines and characters. */
function lastLines(serial: string): string {
  const lines = plainConsoleText(serial).split('\n');
  while (lines.length > 0 && (lines.at(-1) as string).trim() === '') lines.pop();
  return lines.slice(-BOOT_SERIAL_TAIL_LINES).join('\n').slice(-BOOT_SERIAL_TAIL_CHARS);
}

/** A media catalog note's tape set and volumes (never undefined: a catalog entry is kept even when its data is partial). */
export function tapeRecordOf(note: Pick<SnapshotNote, 'time' | 'data'>): TapeRecord {
  const data = (typeof note.data === 'object' && note.data !== null ? note.data : {}) as Partial<TapeNoteData>;
  return {
    tapeSet: typeof data.tapeSet === 'string' ? data.tapeSet : null,
    written: note.time,
    volumes: Array.isArray(data.volumes)
      ? data.volumes.filter((v) => typeof v === 'object' && v !== null && typeof v.sequence === 'number').map((v) => ({ sequence: v.sequence, name: typeof v.name === 'string' ? v.name : '' }))
      : [],
    imported: data.imported === true,
  };
}

/** The records of one snapshot (its notes are listed by its id's prefix: one small listing). */
export async function readSnapshotRecords(repo: Repository, snapshot: string, options: { onDamaged?: (key: string) => void } = {}): Promise<SnapshotRecords> {
  const notes = await listSnapshotNotes(repo, { snapshot, onDamaged: (key) => options.onDamaged?.(key) });
  const records: SnapshotRecords = { verification: null, testRestore: null, tapes: [] };
  for (const note of notes) { // oldest first: a later note replaces an earlier one
    if (note.kind === VERIFICATION_NOTE) records.verification = verificationOf(note) ?? records.verification;
    else if (note.kind === TEST_RESTORE_NOTE) records.testRestore = testRestoreOf(note) ?? records.testRestore;
    else if (note.kind === TAPE_NOTE) records.tapes.push(tapeRecordOf(note));
  }
  return records;
}
