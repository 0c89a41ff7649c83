import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { parseStateTarget } from './state-target.js';

test('database locations: PostgreSQL URLs labelled without their password, everything else an SQLite file', () => {
  const cases: [string, ReturnType<typeof parseStateTarget>['dialect'], string][] = [
    ['postgres://coffer:s3cret@db1.example.com:6432/state?sslmode=require', 'postgres', 'postgres://coffer@db1.example.com:6432/state'],
    ['postgresql://coffer@db1/state', 'postgres', 'postgres://coffer@db1:5432/state'],
    ['POSTGRES://db1/state', 'postgres', 'postgres://db1:5432/state'],
    ['postgres://coffer:p%40ss@/state?host=/run/postgresql&password=x', 'postgres', 'postgres://coffer@/state (host /run/postgresql)'],
    ['postgres://coffer:pw@localhost', 'postgres', 'postgres://coffer@localhost:5432/coffer'],
    ['/var/lib/coffer/state.db', 'sqlite', '/var/lib/coffer/state.db'],
    ['sqlite:relative/state.db', 'sqlite', 'relative/state.db'],
    [':memory:', 'sqlite', ':memory:'],
  ];
  for (const [text, dialect, label] of cases) {
    const target = parseStateTarget(text);
    assert.equal(target.dialect, dialect, text);
    assert.equal(target.label, label, text);
    assert.doesNotMatch(target.label, /s3cret|p%40ss|pw@|password/, text);
  }
});

test('an unknown scheme or an empty location is a usage error', () => {
  for (const text of ['mysql://root@db/state', 'https://db/state', '', 'sqlite:']) {
    assert.throws(() => parseStateTarget(text), (e) => isCofferError(e, 'E_USAGE'), text);
  }
});
