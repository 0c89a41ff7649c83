/**
 * Each agent's own key in each repository it writes to (docs/agent.md, "keys"). Encryption is
 * client-side, so an agent that writes a snapshot needs the master key; it gets it through a
 * key file of its own (`coffer key add`), never through the repository's passphrase. The
 * server makes the key at the agent's first task for a repository, with the repository's
 * passphrase file, and keeps its id and random passphrase in `DIR/AGENT@REPO.json` (`@` is in no name) (0600):
 *
 * ```json
 * {"format": "coffer-agent-key", "version": 1, "agent": "web01", "repository": "main",
 *  "keyId": "<hex>", "passphrase": "<43 base64url characters>", "created": "<ISO 8601>"}
 * ```
 *
 * An unencrypted repository has no keys: the agent gets no passphrase. Revoking an agent
 * removes its key files from the repositories and these records.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CofferError } from '../../errors/index.js';
import { makeFolders } from '../../native/index.js';
import type { RepositoryConfig } from '../config/index.js';
import { withTaskRepository } from '../worker/kinds/open-repository.js';

const FORMAT = 'coffer-agent-key';

interface KeyRecord {
  format: typeof FORMAT;
  version: 1;
  agent: string;
  repository: string;
  keyId: string | null;
  passphrase: string | null;
  created: string;
}

export class AgentKeys {
  /** One key creation at a time per agent and repository (two tasks at once must not make two keys). */
  private readonly making = new Map<string, Promise<string | null>>();

  constructor(private readonly dir: string, private readonly repositories: () => readonly RepositoryConfig[]) {}

  /**
   * The passphrase of the agent's key in the repository, made now when it has none; null for
   * an unencrypted repository. @throws CofferError E_USAGE for an unknown repository, or the
   * repository's own errors (a missing passphrase file: E_NO_PASSPHRASE).
   */
  passphraseFor(agent: string, repository: string): Promise<string | null> {
    const id = `${agent}@${repository}`;
    const pending = this.making.get(id);
    if (pending !== undefined) return pending;
    const made = this.readOrMake(agent, repository).finally(() => this.making.delete(id));
    this.making.set(id, made);
    return made;
  }

  private async readOrMake(agent: string, repository: string): Promise<string | null> {
    const file = join(this.dir, `${agent}@${repository}.json`);
    const known = await readRecord(file);
    if (known !== undefined) return known.passphrase;
    const ref = this.repositories().find((r) => r.name === repository);
    if (ref === undefined) throw new CofferError('E_USAGE', `no repository named ${repository} in the configuration`);
    const passphrase = randomBytes(32).toString('base64url');
    const keyId = await withTaskRepository({ name: ref.name, url: ref.url, ...(ref['passphrase-file'] === undefined ? {} : { passphraseFile: ref['passphrase-file'] }) }, async (repo) =>
      (repo.openedWithKey === null ? null : repo.addKey(passphrase)));
    const record: KeyRecord = { format: FORMAT, version: 1, agent, repository, keyId, passphrase: keyId === null ? null : passphrase, created: new Date().toISOString() };
    await makeFolders(this.dir, 0o700);
    const temp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
    await writeFile(temp, `${JSON.stringify(record)}\n`, { mode: 0o600 });
    await rename(temp, file);
    return record.passphrase;
  }

  /** The agents that have a key record here. */
  async agentsWithKeys(): Promise<string[]> {
    try {
      const names = (await readdir(this.dir)).filter((n) => n.endsWith('.json') && n.includes('@')).map((n) => n.slice(0, n.indexOf('@')));
      return [...new Set(names)];
    } catch {
      return [];
    }
  }

  /** Removes the agent's keys from every repository and forgets them; returns what could not be removed (one line each). */
  async revoke(agent: string): Promise<string[]> {
    const problems: string[] = [];
    let names: string[];
    try {
      names = (await readdir(this.dir)).filter((n) => n.startsWith(`${agent}@`) && n.endsWith('.json'));
    } catch {
      return problems;
    }
    for (const name of names) {
      const file = join(this.dir, name);
      const record = await readRecord(file);
      if (record === undefined || record.agent !== agent) continue;
      const ref = this.repositories().find((r) => r.name === record.repository);
      try {
        if (record.keyId !== null) {
          if (ref === undefined) throw new CofferError('E_USAGE', `repository ${record.repository} is no longer configured`);
          await withTaskRepository({ name: ref.name, url: ref.url, ...(ref['passphrase-file'] === undefined ? {} : { passphraseFile: ref['passphrase-file'] }) }, (repo) => repo.removeKey(record.keyId as string));
        }
        await rm(file, { force: true });
      } catch (error) {
        problems.push(`key ${record.keyId ?? '-'} of agent ${agent} in repository ${record.repository} was not removed: ${(error as Error).message}`);
      }
    }
    return problems;
  }
}

async function readRecord(file: string): Promise<KeyRecord | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const record = JSON.parse(text) as KeyRecord;
  if (record.format !== FORMAT || record.version !== 1) throw new CofferError('E_USAGE', `${file} is not an agent key record`);
  return record;
}
