import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { addToken, parseLifetime, readTokens, removeToken, TokenVerifier } from './token-store.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));
async function tokensFile(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-tokens-'));
  dirs.push(dir);
  return join(dir, 'state', 'tokens.json');
}

test('a token\'s secret is returned once and only its SHA-256 is stored', async () => {
  const file = await tokensFile();
  const secret = await addToken(file, 'web01', { appendOnly: true, expires: null });
  assert.match(secret, /^cfr_[A-Za-z0-9_-]{43}$/);
  const text = await readFile(file, 'utf8');
  assert.equal(text.includes(secret), false);
  assert.equal(text.includes(secret.slice(4)), false);
  const [record] = await readTokens(file);
  assert.equal(record?.appendOnly, true);
  assert.match(record?.sha256 ?? '', /^[0-9a-f]{64}$/);
});

test('the verifier accepts the secret, refuses others, expired ones, and removed ones (within a second)', async () => {
  const file = await tokensFile();
  let now = Date.parse('2026-11-26T00:00:00Z');
  const admin = await addToken(file, 'admin', { appendOnly: false, expires: null, now: new Date(now) });
  const brief = await addToken(file, 'brief', { appendOnly: true, expires: new Date(now + 60_000) });
  const verifier = new TokenVerifier(file, () => now);
  await verifier.load();
  assert.deepEqual(await verifier.verify(admin), { name: 'admin', appendOnly: false });
  assert.deepEqual(await verifier.verify(brief), { name: 'brief', appendOnly: true });
  assert.equal(await verifier.verify(undefined), 'missing');
  assert.equal(await verifier.verify(`${admin.slice(0, -1)}x`), 'unknown');
  now += 60_000;
  assert.equal(await verifier.verify(brief), 'expired');
  await removeToken(file, 'admin');
  assert.deepEqual(await verifier.verify(admin), { name: 'admin', appendOnly: false }, 'not re-read within the second');
  now += 1000;
  assert.equal(await verifier.verify(admin), 'unknown');
});

test('requests arriving together with a token added a moment ago are all accepted, within the second of the last look and after it', async () => {
  const file = await tokensFile();
  let now = Date.parse('2026-11-26T00:00:00Z');
  await addToken(file, 'admin', { appendOnly: false, expires: null });
  const verifier = new TokenVerifier(file, () => now);
  await verifier.load();
  for (const [name, step] of [['web01', 0], ['web02', 1000]] as const) {
    const secret = await addToken(file, name, { appendOnly: true, expires: null });
    now += step;
    // An agent's client sends its first requests together (up to 32 in flight).
    const verdicts = await Promise.all(Array.from({ length: 32 }, () => verifier.verify(secret)));
    assert.deepEqual(new Set(verdicts.map((v) => JSON.stringify(v))), new Set([JSON.stringify({ name, appendOnly: true })]), `${name}: ${JSON.stringify(verdicts)}`);
  }
  assert.equal(await verifier.verify('cfr_not-a-token'), 'unknown');
});

test('names are unique and checked; a damaged file is named; lifetimes parse', async () => {
  const file = await tokensFile();
  await addToken(file, 'a', { appendOnly: false, expires: null });
  await assert.rejects(addToken(file, 'a', { appendOnly: false, expires: null }), (e) => isCofferError(e, 'E_USAGE') && /exists already/.test((e as Error).message));
  await assert.rejects(addToken(file, '../x', { appendOnly: false, expires: null }), (e) => isCofferError(e, 'E_USAGE'));
  await assert.rejects(removeToken(file, 'b'), (e) => isCofferError(e, 'E_USAGE'));
  await writeFile(file, '{"format":"other"}');
  await assert.rejects(readTokens(file), (e) => isCofferError(e, 'E_USAGE') && (e as Error).message.includes(file));
  assert.equal(parseLifetime('90d'), 90 * 86_400_000);
  assert.equal(parseLifetime('30m'), 30 * 60_000);
  for (const bad of ['0d', '1y', 'd', '-1h', '1.5h']) assert.throws(() => parseLifetime(bad), (e) => isCofferError(e, 'E_USAGE'), bad);
});
