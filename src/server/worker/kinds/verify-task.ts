/**
 * The `verify` kind: every chunk every snapshot refers to exists, and with `readData` (all of
 * them, or a subset `N/M` / `P%`) reads back intact; each snapshot's verified share is
 * recorded as its `verification` note, as `coffer verify` does. Damage fails the task with
 * E_VERIFY_FAILED; its report (what is damaged, which snapshots and byte ranges) is kept.
 */
import { randomInt } from 'node:crypto';
import { CofferError } from '../../../errors/index.js';
import { addSnapshotNote, deleteSnapshotNote, listSnapshotNotes, verifyRepository, type Repository, type SnapshotVerification, type VerificationSubset } from '../../../repo/index.js';
import type { VerifySpec } from './kind-specs.js';
import { withTaskRepository } from './open-repository.js';
import type { KindContext, TaskReport } from './task-report.js';

/** The note kind `coffer verify` records each snapshot's verified share under. */
const VERIFICATION_NOTE = 'verification';

/** `N/M` (the N-th of M slices by chunk id) or `P%` (a random sample). @throws E_USAGE. */
export function parseVerifySubset(text: string): VerificationSubset {
  const slice = /^(\d{1,6})\/(\d{1,6})$/.exec(text);
  if (slice !== null) {
    const n = Number(slice[1]);
    const of = Number(slice[2]);
    if (n >= 1 && of >= 1 && n <= of) return { kind: 'slice', n, of };
  }
  const percent = /^(\d{1,3}(?:\.\d+)?)%$/.exec(text);
  if (percent !== null) {
    const p = Number(percent[1]);
    if (p > 0 && p <= 100) return p === 100 ? { kind: 'all' } : { kind: 'sample', percent: p, seed: randomInt(2 ** 32 - 1) };
  }
  throw new CofferError('E_USAGE', `subset ${text}: give N/M (the N-th of M slices) or P% (e.g. 10%)`);
}

export async function runVerifyTask(spec: VerifySpec, context: KindContext): Promise<TaskReport> {
  const readData = spec.readData || spec.subset !== undefined;
  const subset = spec.subset === undefined ? undefined : parseVerifySubset(spec.subset);
  return withTaskRepository(spec.repository, async (repo) => {
    const started = Date.now();
    const report = await verifyRepository(repo, {
      readData,
      now: () => new Date(),
      ...(subset === undefined ? {} : { subset }),
      onProgress: (p) => {
        if (context.signal.aborted) throw new CofferError('E_INTERRUPTED', 'verify cancelled');
        if (p.phase === 'chunks') context.progress(p.done, p.total);
      },
    });
    if (readData) await recordVerification(repo, report.verification);
    const what = readData ? `read and checked ${report.chunksRead} chunks (${report.bytesRead} bytes)${spec.subset === undefined ? '' : ` of subset ${spec.subset}`}` : 'checked that every chunk exists';
    const ok = report.damaged.length === 0;
    const result: TaskReport = {
      summary: `${report.snapshots} snapshot(s), ${report.chunksReferenced} chunks referenced; ${what}; ${ok ? 'no errors were found' : `${report.damaged.length} damaged object(s)`}`,
      warnings: [],
      figures: { snapshots: report.snapshots, chunksReferenced: report.chunksReferenced, chunksRead: report.chunksRead, bytesRead: report.bytesRead, damaged: report.damaged.length, quarantined: report.quarantined, durationMs: Date.now() - started },
      detail: { ok, readData, ...(spec.subset === undefined ? {} : { subset: spec.subset }), damaged: report.damaged, affected: report.affected },
    };
    for (const d of report.damaged) context.log(`DAMAGED ${d.kind} ${d.id.slice(0, 16)}… (${d.problem}): ${d.message}`, 'error');
    if (!ok) {
      context.report(result);
      throw new CofferError('E_VERIFY_FAILED', `verify found ${report.damaged.length} damaged object(s) in repository ${spec.repository.name}`);
    }
    return result;
  });
}

/** Replaces each snapshot's verification note with this run's figures (as `coffer verify` does). */
async function recordVerification(repo: Repository, verification: SnapshotVerification[]): Promise<void> {
  const previous = await listSnapshotNotes(repo, { kind: VERIFICATION_NOTE, onDamaged: () => undefined });
  const older = new Map<string, string[]>();
  for (const note of previous) older.set(note.snapshot, [...(older.get(note.snapshot) ?? []), note.id]);
  for (const v of verification) {
    await addSnapshotNote(repo, v.snapshot, VERIFICATION_NOTE, { chunks: v.chunks, verifiedChunks: v.verifiedChunks, fullyVerifiedAt: v.fullyVerifiedAt });
    for (const id of older.get(v.snapshot) ?? []) await deleteSnapshotNote(repo, v.snapshot, id);
  }
}
