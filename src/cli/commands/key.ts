import { CofferError } from '../../errors/index.js';
import type { Repository } from '../../repo/index.js';
import { withRepository, type CommandContext, type RepositoryOptions } from '../context.js';
import { formatTable } from '../format.js';
import { readPassphrase } from '../passphrase.js';

export interface KeyCommandOptions extends RepositoryOptions {
  newPasswordFile?: string;
}

/** `coffer key list|add|remove ID|passwd`: the passphrases that open the repository. */
export async function keyCommand(action: string, id: string | undefined, options: KeyCommandOptions, context: CommandContext): Promise<number> {
  return withRepository(options, context, async (repo) => {
    switch (action) {
      case 'list': {
        const keys = await repo.listKeys();
        if (options.json) {
          // Every key opens the one master key, so each entry carries the repository's stored-digest fingerprint (an array stays an array).
          const fingerprint = repo.storedDigestFingerprint;
          context.stdout.write(`${JSON.stringify(keys.map((k) => ({ id: k.id, current: k.id === repo.openedWithKey, created: k.created, hostname: k.hostname, username: k.username, storedDigestFingerprint: fingerprint })))}\n`);
        } else {
          const rows = [[' ', 'ID', 'Created', 'Host', 'User']];
          for (const k of keys) rows.push([k.id === repo.openedWithKey ? '*' : ' ', k.id, k.created, k.hostname, k.username]);
          context.stdout.write(`${formatTable(rows)}\n`);
          if (repo.storedDigestFingerprint !== null) context.stdout.write(`stored-digest key fingerprint ${repo.storedDigestFingerprint} (for coffer verify --stored --trust)\n`);
        }
        return 0;
      }
      case 'add': {
        const added = await repo.addKey(await newPassphrase(repo, options, context));
        context.stdout.write(options.json ? `${JSON.stringify({ added })}\n` : `added key ${added}\n`);
        return 0;
      }
      case 'remove': {
        if (id === undefined) throw new CofferError('E_USAGE', 'key remove needs the id of the key (see coffer key list)');
        const removed = await repo.removeKey(id);
        context.stdout.write(options.json ? `${JSON.stringify({ removed })}\n` : `removed key ${removed}\n`);
        return 0;
      }
      case 'passwd': {
        const current = repo.openedWithKey;
        const locked = current === null ? null : await repo.keyLockedUntil(current);
        if (locked !== null) {
          throw new CofferError('E_KEY_REFUSED', `key ${current} is under Object Lock until ${locked.toISOString()}: a new passphrase cannot replace it before then (add one with 'coffer key add' now; the old one keeps working until ${locked.toISOString()}, then 'coffer key remove ${current}')`);
        }
        const added = await repo.addKey(await newPassphrase(repo, options, context));
        if (repo.openedWithKey !== null) await repo.removeKey(repo.openedWithKey, { replacingCurrent: true });
        context.stdout.write(options.json ? `${JSON.stringify({ added, removed: repo.openedWithKey })}\n` : `passphrase changed: key ${added} replaces ${repo.openedWithKey}\n`);
        return 0;
      }
      default:
        throw new CofferError('E_USAGE', `unknown key action ${action}: use list, add, remove or passwd`);
    }
  });
}

async function newPassphrase(repo: Repository, options: KeyCommandOptions, context: CommandContext): Promise<string> {
  const passphrase = await readPassphrase({
    passwordFile: options.newPasswordFile,
    env: context.env,
    variable: 'COFFER_NEW_PASSWORD',
    stdin: context.stdin,
    stderr: context.stderr,
    prompt: `new passphrase for ${repo.location}`,
    confirm: true,
    signal: context.signal,
  });
  if (passphrase === undefined) throw new CofferError('E_NO_PASSPHRASE', 'give the new passphrase with --new-password-file, COFFER_NEW_PASSWORD(_FILE), or on a terminal');
  return passphrase;
}
