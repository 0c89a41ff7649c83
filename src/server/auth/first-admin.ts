/**
 * The first start: with no user at all, make `admin` (Admin on `/`) with a random one-time
 * password, to be printed once and changed at first login (until then the account can only
 * change its password, log out, and read who it is).
 */
import { randomPassword } from './password.js';
import type { UserStore } from './user-store.js';

export const FIRST_ADMIN = 'admin';

/** The one-time password when the admin was made now; undefined when users exist. */
export async function ensureFirstAdmin(users: UserStore): Promise<string | undefined> {
  if ((await users.count()) > 0) return undefined;
  const password = randomPassword();
  await users.create(FIRST_ADMIN, password, { grants: [{ role: 'Admin', path: '/' }], mustChangePassword: true });
  return password;
}
