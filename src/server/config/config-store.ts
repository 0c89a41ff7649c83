/**
 * The configuration the service runs with: read from its file at start, changed through the
 * API. A change is validated in full, written atomically to the file, and recorded as a new
 * version (config_versions) with its author, time and comment; changes are applied one at a
 * time. A file edited by hand while the server was down is recorded as a version at start.
 * Secrets in the text (inline SMTP passwords…) are redacted in everything this class hands to
 * the API, and a redacted value sent back keeps the stored secret.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Kysely } from 'kysely';
import { parseDocument } from 'yaml';
import type { StateSchema } from '../state/index.js';
import { writeFileAtomically } from './atomic-write.js';
import { ConfigInvalidError } from './config-problem.js';
import type { ServiceConfig } from './config-schema.js';
import { parseConfig } from './parse-config.js';
import { REDACTED, redactDocument, redactValue, restoreRedacted } from './redact-secrets.js';
import { FIRST_START_CONFIG } from './sample-config.js';

export interface ConfigVersion {
  version: number;
  author: string;
  createdAt: number;
  comment: string;
  sha256: string;
}

export class ConfigStore {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly listeners: ((config: ServiceConfig, version: number) => void)[] = [];

  private constructor(
    private readonly db: Kysely<StateSchema>,
    readonly file: string,
    private state: { version: number; text: string; config: ServiceConfig },
    private readonly now: () => number,
  ) {}

  /**
   * Reads `file` (writing {@link FIRST_START_CONFIG} there first when it does not exist).
   * @throws ConfigInvalidError when the file is invalid.
   */
  static async open(db: Kysely<StateSchema>, file: string, now: () => number = Date.now): Promise<{ store: ConfigStore; created: boolean }> {
    let text: string;
    let created = false;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      text = FIRST_START_CONFIG;
      await writeFileAtomically(file, text);
      created = true;
    }
    const config = parseConfig(text, file);
    const latest = await db.selectFrom('config_versions').select(['version', 'sha256']).orderBy('version', 'desc').limit(1).executeTakeFirst();
    let version = latest?.version ?? 0;
    if (latest?.sha256 !== sha256(text)) {
      version += 1;
      await db
        .insertInto('config_versions')
        .values({ version, text, sha256: sha256(text), author: 'system', created_at: now(), comment: created ? 'first start' : latest === undefined ? 'the file found at first start' : 'the file was changed outside the server' })
        .execute();
    }
    return { store: new ConfigStore(db, file, { version, text, config }, now), created };
  }

  /** The configuration in force (secrets included: for the server's own use). */
  get config(): ServiceConfig {
    return this.state.config;
  }

  get version(): number {
    return this.state.version;
  }

  /**
   * Calls `listener` after every change applied through {@link update} (the task runner, the
   * scheduler and the notifier take the new configuration). A listener that throws does not
   * undo the change: the file and the version are already written.
   */
  onChange(listener: (config: ServiceConfig, version: number) => void): void {
    this.listeners.push(listener);
  }

  /** The current text and parsed configuration with secrets redacted, for the API. */
  current(): { version: number; text: string; config: ServiceConfig } {
    return { version: this.state.version, text: redactText(this.state.text), config: redactValue(this.state.config) };
  }

  /**
   * Validates and applies new text. `expectedVersion` (when given) must be the version in
   * force, so two editors do not overwrite each other.
   * Returns `{ conflict: version in force }` when `expectedVersion` is stale.
   * @throws ConfigInvalidError for an invalid text (nothing is written).
   */
  update(text: string, change: { author: string; comment: string; expectedVersion?: number }): Promise<{ version: number; changed: boolean } | { conflict: number }> {
    const run = this.queue.then(() => this.apply(text, change));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async apply(text: string, change: { author: string; comment: string; expectedVersion?: number }): Promise<{ version: number; changed: boolean } | { conflict: number }> {
    if (change.expectedVersion !== undefined && change.expectedVersion !== this.state.version) return { conflict: this.state.version };
    const next = parseDocument(text);
    if (next.errors.length === 0 && text.includes(REDACTED)) {
      const unresolved = restoreRedacted(next, parseDocument(this.state.text));
      if (unresolved.length > 0) {
        throw new ConfigInvalidError('config', unresolved.map((key) => ({ line: 0, key, message: 'holds the redacted placeholder but no secret is stored at this key: write the secret itself' })));
      }
      text = next.toString();
    }
    const config = parseConfig(text, 'config');
    if (sha256(text) === sha256(this.state.text)) return { version: this.state.version, changed: false };
    await writeFileAtomically(this.file, text);
    const version = this.state.version + 1;
    await this.db.insertInto('config_versions').values({ version, text, sha256: sha256(text), author: change.author, created_at: this.now(), comment: change.comment }).execute();
    this.state = { version, text, config };
    for (const listener of this.listeners) {
      try {
        listener(config, version);
      } catch {
        // A listener reports its own failures (the change stands: it is written and versioned).
      }
    }
    return { version, changed: true };
  }

  /** A page of versions, newest first. */
  async versions(options: { offset: number; limit: number }): Promise<{ items: ConfigVersion[]; total: number }> {
    const total = Number((await this.db.selectFrom('config_versions').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const rows = await this.db.selectFrom('config_versions').select(['version', 'author', 'created_at', 'comment', 'sha256']).orderBy('version', 'desc').limit(options.limit).offset(options.offset).execute();
    return { items: rows.map((r) => ({ version: r.version, author: r.author, createdAt: Number(r.created_at), comment: r.comment, sha256: r.sha256 })), total };
  }

  /** One version's text, secrets redacted. */
  async versionText(version: number): Promise<(ConfigVersion & { text: string }) | undefined> {
    const r = await this.db.selectFrom('config_versions').selectAll().where('version', '=', version).executeTakeFirst();
    return r === undefined ? undefined : { version: r.version, author: r.author, createdAt: Number(r.created_at), comment: r.comment, sha256: r.sha256, text: redactText(r.text) };
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function redactText(text: string): string {
  const document = parseDocument(text);
  if (document.errors.length > 0) return '';
  redactDocument(document);
  return document.toString();
}
