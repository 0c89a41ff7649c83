import { protectSnapshot, resolveSnapshot, unprotectSnapshot } from '../../repo/index.js';
import { withRepository, type CommandContext, type RepositoryOptions } from '../context.js';

export interface ProtectOptions extends RepositoryOptions {
  reason?: string;
}

/**
 * `coffer protect SNAPSHOT [--reason TEXT]`: no forget removes it, neither a policy nor by
 * name, until `coffer unprotect`. Protecting again replaces the reason.
 */
export async function protectCommand(reference: string, options: ProtectOptions, context: CommandContext): Promise<number> {
  return withRepository(options, context, async (repo) => {
    const snapshot = await resolveSnapshot(repo, reference);
    const protection = await protectSnapshot(repo, snapshot.id, { reason: options.reason ?? null, now: new Date() });
    if (options.json) {
      context.stdout.write(`${JSON.stringify({ id: snapshot.id, vm: snapshot.vm, time: snapshot.time, protected: true, protectedAt: protection.time, reason: protection.reason })}\n`);
    } else {
      context.stdout.write(`protected snapshot ${snapshot.id.slice(0, 8)} (vm ${snapshot.vm}, ${snapshot.time})${protection.reason !== null ? `: ${protection.reason}` : ''}\n`);
    }
    return 0;
  });
}

/** `coffer unprotect SNAPSHOT`: forget may remove it again. Unprotecting an unprotected snapshot is not an error. */
export async function unprotectCommand(reference: string, options: RepositoryOptions, context: CommandContext): Promise<number> {
  return withRepository(options, context, async (repo) => {
    const snapshot = await resolveSnapshot(repo, reference);
    const was = await unprotectSnapshot(repo, snapshot.id);
    if (options.json) {
      context.stdout.write(`${JSON.stringify({ id: snapshot.id, vm: snapshot.vm, time: snapshot.time, protected: false, wasProtected: was })}\n`);
    } else {
      context.stdout.write(`${was ? 'unprotected' : 'was not protected:'} snapshot ${snapshot.id.slice(0, 8)} (vm ${snapshot.vm}, ${snapshot.time})\n`);
    }
    return 0;
  });
}
