import { CofferError } from '../../errors/index.js';
import { coverStoredObjects, storedDigestKeyFingerprint, verifyStored } from '../../repo/index.js';
import { ExitCode } from '../exit-codes.js';
import { backendFor, repositoryLocation, withRepository, type CommandContext, type RepositoryOptions } from '../context.js';
import { formatBytes } from '../format.js';
import { ProgressReporter } from '../progress.js';

export interface VerifyStoredOptions extends RepositoryOptions {
  /** The fingerprint of the stored-digest key, given by the key holder out of band. */
  trust?: string;
  /** Objects no record covers count as damage (exit 13) instead of a warning. */
  strict?: boolean;
}

/**
 * `coffer verify --stored [--trust FINGERPRINT] [--strict]`: checks every object's stored
 * bytes against the key holder's signed digests, with no passphrase (it never asks for one:
 * the storage side has none). Exit 13 when anything is damaged or missing, or a record does
 * not check.
 */
export async function verifyStoredCommand(options: VerifyStoredOptions, context: CommandContext): Promise<number> {
  if (options.passwordFile !== undefined) throw new CofferError('E_USAGE', '--stored needs no passphrase: leave out --password-file');
  const backend = backendFor(repositoryLocation(options, context), context.env);
  const progress = ProgressReporter.for(context.stderr, options.json === true);
  const report = await verifyStored(backend, {
    ...(options.trust !== undefined ? { trust: options.trust } : {}),
    signal: context.signal,
    onProgress: (p) => {
      if (p.phase === 'objects') progress.update({ label: 'verify stored', done: p.bytesRead, total: Math.max(p.bytesRead, p.bytesExpected) });
    },
  });
  progress.done();
  const ok = report.damaged.length === 0 && (options.strict !== true || report.notCovered.length === 0);
  if (options.json) {
    context.stdout.write(`${JSON.stringify({ ok, ...report })}\n`);
  } else {
    const out = (line: string) => context.stdout.write(`${line}\n`);
    out(`stored-digest key ${report.fingerprint}${report.trusted ? ' (trusted)' : ''}`);
    if (!report.trusted) {
      context.stderr.write(`coffer: warning: this key was not checked against a fingerprint from the key holder: anyone who can write the storage could have replaced it and the records; pass --trust ${report.fingerprint} once you have compared it with the one coffer init or coffer key list printed\n`);
    }
    out(`${report.records} digest record(s), the newest of ${report.newestRecord ?? 'never'}; read ${report.objectsRead} object(s), ${formatBytes(report.bytesRead)}`);
    for (const problem of report.damaged) out(`DAMAGED ${problem.key} (${problem.problem}): ${problem.message}`);
    const shown = 20;
    for (const object of report.notCovered.slice(0, shown)) out(`NOT COVERED ${object.key} (${object.size} bytes): no signed digest; written before digests were recorded, or not by a key holder`);
    if (report.notCovered.length > shown) out(`… and ${report.notCovered.length - shown} more not covered (--json lists them all)`);
    out(
      report.damaged.length === 0
        ? `all ${report.objectsIntact} covered object(s) are intact${report.notCovered.length > 0 ? `; ${report.notCovered.length} object(s) not covered` : ''}`
        : `verify --stored found ${report.damaged.length} damaged, missing or untrusted object(s)`,
    );
  }
  return ok ? ExitCode.ok : ExitCode.verifyFailed;
}

/** `coffer verify --stored-key`: the fingerprint of the stored public key, unverified, no passphrase. */
export async function storedKeyCommand(options: RepositoryOptions, context: CommandContext): Promise<number> {
  const backend = backendFor(repositoryLocation(options, context), context.env);
  const fingerprint = await storedDigestKeyFingerprint(backend);
  if (fingerprint === null) {
    throw new CofferError('E_VERIFY_FAILED', `${backend.location} has no stored-digest-key yet: it is written the first time a key holder writes (coffer init, backup, sync…)`);
  }
  if (options.json) context.stdout.write(`${JSON.stringify({ fingerprint, verified: false })}\n`);
  else context.stdout.write(`${fingerprint}\n`);
  return 0;
}

/**
 * `coffer verify --cover-stored` (with the passphrase): signs digests for the objects that
 * have none (written before stored digests existed), once each is authenticated. Exit 13 when
 * an object does not authenticate (it stays not covered; verify --read-data tells more).
 */
export async function coverStoredCommand(options: RepositoryOptions, context: CommandContext): Promise<number> {
  return withRepository(options, context, async (repo) => {
    const report = await coverStoredObjects(repo, { signal: context.signal });
    const damaged = report.skipped.filter((s) => s.reason.startsWith('does not authenticate'));
    if (options.json) {
      context.stdout.write(`${JSON.stringify({ ok: damaged.length === 0, fingerprint: repo.storedDigestFingerprint, ...report })}\n`);
    } else {
      const out = (line: string) => context.stdout.write(`${line}\n`);
      for (const problem of report.rejectedRecords) out(`UNTRUSTED ${problem.key} (${problem.problem}): ${problem.message}`);
      for (const skipped of report.skipped) out(`NOT COVERED ${skipped.key}: ${skipped.reason}`);
      out(`covered ${report.objectsCovered} object(s) that had no signed digest (read ${formatBytes(report.bytesRead)}); stored-digest key ${repo.storedDigestFingerprint ?? '-'}`);
    }
    return damaged.length === 0 ? ExitCode.ok : ExitCode.verifyFailed;
  });
}
