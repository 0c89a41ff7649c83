/**
 * Password hashing with scrypt (RFC 7914) from node:crypto. The stored form carries its own
 * parameters, so raising the cost later leaves old hashes readable:
 *
 *   scrypt$<N>$<r>$<p>$<salt, base64url, 16 bytes>$<hash, base64url, 32 bytes>
 *
 * N = 2^15, r = 8, p = 1 (32 MiB, about 90 ms on one core here, measured): OWASP's minimum for scrypt is
 * N = 2^17 with r = 8, p = 1 or an equivalent; 2^15 keeps logins snappy on the 2-core CI and a
 * login rate limiter stands in front (login-throttle.ts).
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

const DEFAULT = { N: 2 ** 15, r: 8, p: 1 };
const KEY_LENGTH = 32;
/** The shortest password accepted when one is set. */
export const MIN_PASSWORD_LENGTH = 10;

function derive(password: string, salt: Buffer, params: { N: number; r: number; p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, KEY_LENGTH, { ...params, maxmem: 256 * params.N * params.r }, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

/** The stored form of `password` (a new random salt each time). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await derive(password, salt, DEFAULT);
  return `scrypt$${DEFAULT.N}$${DEFAULT.r}$${DEFAULT.p}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

/** True when `password` matches `stored`; false for a wrong password or a malformed stored form. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![N, r, p].every((n) => Number.isSafeInteger(n) && n > 0) || N > 2 ** 20 || r > 32 || p > 16) return false;
  const expected = Buffer.from(parts[5] as string, 'base64url');
  const actual = await derive(password, Buffer.from(parts[4] as string, 'base64url'), { N, r, p });
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** A readable random password for the first start (about 120 bits). */
export function randomPassword(): string {
  return randomBytes(15).toString('base64url');
}
