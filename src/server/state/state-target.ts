/**
 * Where a state database lives, from what an administrator writes (`--database`, the config):
 *
 * - `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?host=/socket/dir&sslmode=…]` or
 *   `postgresql://…` (libpq's URL form, as the `pg` client reads it): PostgreSQL;
 * - `sqlite:PATH`, or any other text without a `scheme://`: an SQLite file (`:memory:` too).
 *
 * The label names host, port, database and user, never the password: it is what error
 * messages, logs and reports show.
 */
import { CofferError } from '../../errors/index.js';

/** A parsed database location. */
export type StateTarget =
  | { dialect: 'sqlite'; file: string; label: string }
  | { dialect: 'postgres'; url: string; label: string };

/** Parses `text`; an unknown `scheme://` is an E_USAGE error (a malformed URL fails when connecting). */
export function parseStateTarget(text: string): StateTarget {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)?.[1]?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql') return { dialect: 'postgres', url: text, label: postgresLabel(text) };
  if (scheme !== undefined) {
    throw new CofferError('E_USAGE', `unsupported state database ${scheme}://…: use postgres://USER@HOST/DATABASE or an SQLite file path`);
  }
  const file = text.startsWith('sqlite:') ? text.slice('sqlite:'.length) : text;
  if (file === '') throw new CofferError('E_USAGE', 'the state database location is empty');
  return { dialect: 'sqlite', file, label: file };
}

/** `postgres://user@host:port/database` without the password (nor any query parameter but host). */
function postgresLabel(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // Forms the WHATWG parser refuses but libpq and pg accept (`postgres://user@/db?host=/run/pg`).
    const socketDir = /[?&]host=([^&]*)/.exec(text)?.[1];
    const base = text.replace(/\?.*$/, '').replace(/\/\/([^:@/]*):[^@/]*@/, '//$1@');
    return socketDir === undefined ? base : `${base} (host ${decodeURIComponent(socketDir)})`;
  }
  const socketDir = url.searchParams.get('host');
  const host = url.hostname !== '' ? url.hostname : socketDir ?? 'localhost';
  const port = url.port !== '' ? url.port : url.searchParams.get('port') ?? '5432';
  const database = decodeURIComponent(url.pathname.replace(/^\//, '')) || decodeURIComponent(url.username) || '(default)';
  const user = url.username === '' ? '' : `${decodeURIComponent(url.username)}@`;
  return `postgres://${user}${host}:${port}/${database}`;
}
