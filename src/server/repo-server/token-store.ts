import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CofferError } from '../../errors/index.js';
import { makeFolders } from '../../native/index.js';

/**
 * The repository server's tokens, one per agent (a guest, a backup host) or administrator,
 * kept in `STATE_DIR/tokens.json`. Only a SHA-256 of each secret is stored: a secret is 32
 * random bytes, so a hash is as good as a slow KDF against guessing, and the file leaking
 * gives nobody a token. The file, rewritten atomically (temporary file + rename) by
 * `coffer serve-repo token add|remove`, and re-read by a running server when it changes:
 *
 * ```json
 * {"format": "coffer-repo-server-tokens", "version": 1, "tokens": [
 *   {"name": "web01", "sha256": "<64 hex>", "appendOnly": true,
 *    "created": "2026-11-26T04:00:00.000Z", "expires": "2026-12-26T04:00:00.000Z" | null}]}
 * ```
 *
 * A secret is `cfr_` + 43 base64url characters. Names are what the server records as the
 * writer of each object (owner-index.ts): a token replaced under the same name (remove, then
 * add) keeps seeing its agent's snapshots.
 */
export interface TokenRecord {
  name: string;
  sha256: string;
  appendOnly: boolean;
  created: string;
  expires: string | null;
}

/** Who a request is made by, once its token was accepted. */
export interface Principal {
  name: string;
  appendOnly: boolean;
}

const FORMAT = 'coffer-repo-server-tokens';
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const SECRET_PREFIX = 'cfr_';

/** The tokens file of a state directory. */
export function tokensFile(stateDir: string): string {
  return join(stateDir, 'tokens.json');
}

/** The hash stored for a secret. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Reads the tokens (none when the file does not exist); a damaged file is E_USAGE naming it. */
export async function readTokens(file: string): Promise<TokenRecord[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new CofferError('E_USAGE', `cannot read the tokens file ${file}: ${(error as Error).message}`, { cause: error });
  }
  const bad = (why: string) => new CofferError('E_USAGE', `the tokens file ${file} is damaged: ${why}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  const doc = parsed as { format?: unknown; version?: unknown; tokens?: unknown };
  if (doc.format !== FORMAT || doc.version !== 1 || !Array.isArray(doc.tokens)) throw bad('not a version 1 tokens file');
  return (doc.tokens as Record<string, unknown>[]).map((t, i) => {
    if (typeof t.name !== 'string' || typeof t.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(t.sha256) || typeof t.appendOnly !== 'boolean'
      || typeof t.created !== 'string' || !(t.expires === null || (typeof t.expires === 'string' && !Number.isNaN(Date.parse(t.expires))))) {
      throw bad(`token ${i + 1} is malformed`);
    }
    return { name: t.name, sha256: t.sha256, appendOnly: t.appendOnly, created: t.created, expires: t.expires as string | null };
  });
}

async function writeTokens(file: string, tokens: TokenRecord[]): Promise<void> {
  await makeFolders(dirname(file), 0o700);
  const temp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
  await writeFile(temp, `${JSON.stringify({ format: FORMAT, version: 1, tokens }, null, 2)}\n`, { mode: 0o600 });
  await rename(temp, file);
}

/** Adds a token; returns its secret (shown once, never stored). A taken name is E_USAGE. */
export async function addToken(file: string, name: string, options: { appendOnly: boolean; expires: Date | null; now?: Date }): Promise<string> {
  if (!NAME_PATTERN.test(name)) throw new CofferError('E_USAGE', `token name ${JSON.stringify(name)} is not valid: letters, digits, . _ -, at most 64`);
  const tokens = await readTokens(file);
  if (tokens.some((t) => t.name === name)) throw new CofferError('E_USAGE', `a token named ${name} exists already; remove it first (coffer serve-repo token remove ${name})`);
  const secret = `${SECRET_PREFIX}${randomBytes(32).toString('base64url')}`;
  const now = options.now ?? new Date();
  tokens.push({ name, sha256: hashSecret(secret), appendOnly: options.appendOnly, created: now.toISOString(), expires: options.expires?.toISOString() ?? null });
  await writeTokens(file, tokens);
  return secret;
}

/** Removes a token by name; an unknown name is E_USAGE. */
export async function removeToken(file: string, name: string): Promise<void> {
  const tokens = await readTokens(file);
  const kept = tokens.filter((t) => t.name !== name);
  if (kept.length === tokens.length) throw new CofferError('E_USAGE', `no token named ${name} in ${file}`);
  await writeTokens(file, kept);
}

/** Why a token was refused (for the 401's detail; never says which tokens exist). */
export type TokenRefusal = 'missing' | 'unknown' | 'expired';

/**
 * The tokens as a running server sees them: re-read when the file changes, so `token add` and
 * `token remove` apply without a restart. Every secret is compared, in constant time, with
 * every stored hash.
 *
 * When the file is looked at: at most once a second for a token that is known (a removed
 * token keeps working for up to a second), and at once for one that is not (a token added a
 * moment ago is accepted on its first request; a guesser costs a stat, and the server's
 * limiter bounds the guesses). One look at a time: requests arriving while the file is being
 * looked at wait for that look and share its result. (They used to skip it and answer from the
 * tokens known before, so of an agent's first requests sent together, all but one were refused
 * as unknown: openRepository's overlapped config and key reads met it.)
 */
export class TokenVerifier {
  private tokens: TokenRecord[] = [];
  private checkedAt = 0;
  private signature = '';
  private looking: Promise<void> | undefined;

  constructor(private readonly file: string, private readonly now: () => number = Date.now) {}

  /** Loads the file now (at start: a damaged file stops the server with its name). */
  async load(): Promise<void> {
    this.tokens = await readTokens(this.file);
    this.signature = await this.fileSignature();
    this.checkedAt = this.now();
  }

  /** The principal a bearer secret stands for, or why it is refused. Safe to call concurrently. */
  async verify(secret: string | undefined): Promise<Principal | TokenRefusal> {
    if (this.looking !== undefined || this.now() - this.checkedAt >= 1000) await this.look();
    if (secret === undefined || secret === '') return 'missing';
    const offered = Buffer.from(hashSecret(secret), 'hex');
    let found = this.find(offered);
    if (found === undefined) {
      // Perhaps added since the last look: look again, with a look that starts after this
      // request arrived (one already under way may have read the file before the token was in).
      await this.looking;
      await this.look();
      found = this.find(offered);
    }
    if (found === undefined) return 'unknown';
    if (found.expires !== null && Date.parse(found.expires) <= this.now()) return 'expired';
    return { name: found.name, appendOnly: found.appendOnly };
  }

  private find(offered: Buffer): TokenRecord | undefined {
    let found: TokenRecord | undefined;
    for (const token of this.tokens) {
      if (timingSafeEqual(offered, Buffer.from(token.sha256, 'hex')) && found === undefined) found = token;
    }
    return found;
  }

  /** Looks at the file (re-reading it when it changed), or joins the look under way. */
  private look(): Promise<void> {
    this.looking ??= this.reread().finally(() => {
      this.looking = undefined;
    });
    return this.looking;
  }

  private async reread(): Promise<void> {
    this.checkedAt = this.now();
    const signature = await this.fileSignature();
    if (signature === this.signature) return;
    try {
      this.tokens = await readTokens(this.file);
      this.signature = signature;
    } catch {
      // A file caught half-written or damaged: keep the tokens known, look again next second.
    }
  }

  private async fileSignature(): Promise<string> {
    try {
      const info = await stat(this.file);
      return `${info.ino}:${info.size}:${info.mtimeMs}`;
    } catch {
      return 'absent';
    }
  }
}

/**
 * Parses a token lifetime: a number and a unit, `s`, `m` (minutes), `h`, `d` or `w` (`90d`,
 * `12h`); E_USAGE otherwise.
 */
export function parseLifetime(text: string): number {
  const match = /^(\d{1,7})(s|m|h|d|w)$/.exec(text.trim());
  const units: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
  if (match === null || Number(match[1]) === 0) throw new CofferError('E_USAGE', `${JSON.stringify(text)} is not a lifetime: a number and s, m, h, d or w (e.g. 90d, 12h)`);
  return Number(match[1]) * (units[match[2] as string] as number);
}
