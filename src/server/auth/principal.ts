/**
 * Who is calling: a user through a console session, or a token acting for its owner. Resolved
 * once per request from the `coffer_session` cookie or the `Authorization: Bearer coffer_…`
 * header; the grants are the ones that decide (a token's own, cut down to its owner's).
 */
import { grantWithin, type Grant } from './access.js';
import type { SessionStore } from './session-store.js';
import type { TokenStore } from './token-store.js';
import type { UserStore } from './user-store.js';

export interface Principal {
  kind: 'session' | 'token';
  userId: string;
  userName: string;
  tokenId?: string;
  grants: Grant[];
  mustChangePassword: boolean;
  /** For a session: the cookie's value and the CSRF token it requires. */
  session?: { cookie: string; csrfToken: string; expiresAt: number };
  /** How the audit log names the caller: `user:NAME` or `token:ID (user NAME)`. */
  actor: string;
}

/**
 * The user behind an actor name (`user:NAME`, or `token:ID (user NAME)` for a token acting for
 * NAME); undefined for any other actor (`system`, `anonymous`). Four eyes compares these: one
 * person with a session and a token of their own is still one pair of eyes.
 */
export function userOfActor(actor: string): string | undefined {
  return /^user:(.+)$/.exec(actor)?.[1] ?? /^token:\S+ \(user (.+)\)$/.exec(actor)?.[1];
}

export type Authentication = { principal: Principal } | { failure: 'invalid' | 'expired' } | { none: true };

export class Authenticator {
  constructor(
    private readonly users: UserStore,
    private readonly sessions: SessionStore,
    private readonly tokens: TokenStore,
  ) {}

  /** A Bearer token wins over a cookie (scripts may carry a stale cookie jar). */
  async authenticate(credentials: { cookie?: string | undefined; authorization?: string | undefined }): Promise<Authentication> {
    if (credentials.authorization !== undefined) {
      const match = /^Bearer (\S+)$/i.exec(credentials.authorization);
      if (match === null) return { failure: 'invalid' };
      const token = await this.tokens.authenticate(match[1] as string);
      if (token === undefined) return { failure: 'invalid' };
      if (token === 'expired') return { failure: 'expired' };
      const owner = await this.users.byId(token.userId);
      if (owner === undefined) return { failure: 'invalid' };
      return {
        principal: {
          kind: 'token',
          userId: owner.id,
          userName: owner.name,
          tokenId: token.id,
          grants: token.grants.filter((g) => grantWithin(g, owner.grants)),
          // A token cannot change a password; one made before a reset still must not act.
          mustChangePassword: owner.mustChangePassword,
          actor: `token:${token.id} (user ${owner.name})`,
        },
      };
    }
    if (credentials.cookie !== undefined && credentials.cookie !== '') {
      const session = await this.sessions.lookup(credentials.cookie);
      if (session === undefined) return { failure: 'expired' };
      const user = await this.users.byId(session.userId);
      if (user === undefined) return { failure: 'invalid' };
      return {
        principal: {
          kind: 'session',
          userId: user.id,
          userName: user.name,
          grants: user.grants,
          mustChangePassword: user.mustChangePassword,
          session: { cookie: credentials.cookie, csrfToken: session.csrfToken, expiresAt: session.expiresAt },
          actor: `user:${user.name}`,
        },
      };
    }
    return { none: true };
  }
}
