import assert from 'node:assert/strict';
import { test } from 'node:test';
import { contentDigestOf, deleteAccess, listScope, ownershipKey, putAccess, readAccess } from './access-policy.js';

const admin = { name: 'admin', appendOnly: false };
const agent = { name: 'web01', appendOnly: true };
const S = `snapshots/${'a'.repeat(64)}`;
const C = `chunks/aa/${'a'.repeat(64)}`;
const I = `indexes/aa/${'a'.repeat(64)}`;
const T = `trees/aa/${'a'.repeat(64)}`;
const P = `packs/aa/${'a'.repeat(64)}`;
const G = `segments/${'a'.repeat(64)}`;
const L = `leases/${'b'.repeat(64)}`;
const N = `notes/${'a'.repeat(64)}.${'c'.repeat(64)}`;
const R = `removed-packs/000000000001.${'d'.repeat(32)}`;
/** A tag record of snapshot S (its owner, as the server passes it, is S's writer). */
const TG = `tags/${'a'.repeat(64)}.${'e'.repeat(64)}`;

test('read: an agent reads the shared objects and its own, other agents\' are hidden, the rest denied', () => {
  const table: [string, string | undefined, string][] = [
    ['config', undefined, 'yes'], ['deletions', undefined, 'yes'], ['keys/0123456789abcdef', undefined, 'yes'],
    [C, undefined, 'yes'], [I, undefined, 'yes'], [T, undefined, 'yes'], [P, undefined, 'yes'], [G, undefined, 'yes'], [L, 'web02', 'yes'], [R, undefined, 'yes'],
    [S, 'web01', 'yes'], [S, 'web02', 'hidden'], [S, undefined, 'hidden'], [N, 'web02', 'hidden'],
    [TG, 'web01', 'yes'], [TG, 'web02', 'hidden'], [TG, undefined, 'hidden'],
    [`quarantine/${'a'.repeat(64)}.1`, undefined, 'denied'], ['other', undefined, 'denied'],
  ];
  for (const [key, owner, expected] of table) assert.equal(readAccess(agent, key, owner), expected, `${key} owned by ${owner}`);
  for (const [key, owner] of table) assert.equal(readAccess(admin, key, owner), 'yes');
});

test('list: an agent lists keys, leases and quarantine whole, its own snapshots, notes and segments, and never chunks, indexes or everything', () => {
  const table: [string, string][] = [
    ['keys/', 'all'], ['leases/', 'all'], ['quarantine/', 'all'], ['removed-packs/', 'all'],
    ['snapshots/', 'own'], ['notes/', 'own'], [`notes/${'a'.repeat(64)}`, 'own'], ['protected/', 'own'], ['verifications/', 'own'], ['tags/', 'own'], [`tags/${'a'.repeat(64)}.`, 'own'],
    ['chunks/', 'denied'], ['chunks/aa/', 'denied'], ['indexes/', 'denied'], ['trees/', 'denied'], ['packs/', 'denied'], ['segments/', 'own'], ['', 'denied'], ['snap', 'denied'],
  ];
  for (const [prefix, expected] of table) assert.equal(listScope(agent, prefix), expected, prefix);
  for (const [prefix] of table) assert.equal(listScope(admin, prefix), 'all');
});

test('put: an agent adds, keeps stored chunks, refreshes only its own leases, and never replaces anything else', () => {
  const table: [string, { owner: string | undefined } | null, string][] = [
    [C, null, 'write'], [C, { owner: undefined }, 'keep'], [P, null, 'write'], [P, { owner: undefined }, 'keep'], [G, null, 'write'], [G, { owner: undefined }, 'keep'], [I, { owner: undefined }, 'keep'], [T, null, 'write'], [T, { owner: undefined }, 'keep'],
    [S, null, 'write'], [S, { owner: 'web01' }, 'same-bytes'], [S, { owner: 'web02' }, 'same-bytes'], [N, { owner: 'web01' }, 'same-bytes'],
    [L, null, 'write'], [L, { owner: 'web01' }, 'write'], [L, { owner: 'web02' }, 'same-bytes'],
    ['config', null, 'denied'], ['deletions', { owner: undefined }, 'denied'], ['keys/0123456789abcdef', null, 'denied'],
    [`quarantine/${'a'.repeat(64)}.1`, null, 'denied'], ['other/x', null, 'denied'],
    [R, null, 'denied'], [R, { owner: undefined }, 'denied'], // only prune (a full token) records removed packs
    [TG, null, 'denied'], [TG, { owner: undefined }, 'denied'], [TG, { owner: 'web01' }, 'denied'], // tags only through a full token: never an agent's
  ];
  for (const [key, existing, expected] of table) assert.equal(putAccess(agent, key, existing), expected, `${key} ${JSON.stringify(existing)}`);
  for (const [key, existing] of table) assert.equal(putAccess(admin, key, existing), 'write');
});

test('delete: an agent deletes only its own leases; the administrator everything', () => {
  assert.equal(deleteAccess(agent, L, 'web01'), true);
  for (const [key, owner] of [[L, 'web02'], [L, undefined], [S, 'web01'], [C, undefined], [P, undefined], [G, undefined], [R, undefined], [TG, 'web01'], [TG, undefined], ['config', undefined]] as const) {
    assert.equal(deleteAccess(agent, key, owner), false, `${key} owned by ${owner}`);
    assert.equal(deleteAccess(admin, key, owner), true);
  }
});

test('a pack key names the SHA-256 its bytes must have; no other key does', () => {
  assert.equal(contentDigestOf(P), 'a'.repeat(64));
  for (const key of [C, G, I, S, `packs/ab/${'a'.repeat(64)}`, `packs/aa/${'a'.repeat(63)}`, 'packs/']) assert.equal(contentDigestOf(key), null, key);
});

test('a tag record\'s visibility is its snapshot\'s: the key whose writer counts is the manifest\'s', () => {
  assert.equal(ownershipKey(TG), S);
  for (const key of [S, N, C, L, `tags/${'a'.repeat(64)}`, `tags/${'a'.repeat(64)}.x`, 'tags/']) assert.equal(ownershipKey(key), key, key);
});
