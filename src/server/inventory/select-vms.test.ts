import assert from 'node:assert/strict';
import { test } from 'node:test';
import { globToRegExp, selectVms } from './index.js';

const VMS = [
  { name: 'web1', host: 'hv1', tags: ['web', 'prod'] },
  { name: 'web2', host: 'hv2', tags: ['web'] },
  { name: 'db1', host: 'hv2', tags: ['prod'] },
  { name: 'old-ftp', host: 'hv3' },
  { name: 'web.x', host: 'hv3' },
];

const CASES: Array<[string, Parameters<typeof selectVms>[0], string[]]> = [
  ['nothing selects nothing', {}, []],
  ['by name', { names: ['db1', 'nope'] }, ['db1']],
  ['by tag', { tags: ['prod'] }, ['web1', 'db1']],
  ['by host', { hosts: ['hv2'] }, ['web2', 'db1']],
  ['by glob', { globs: ['web?'] }, ['web1', 'web2']],
  ['a dot in a glob is literal', { globs: ['web.*'] }, ['web.x']],
  ['a set and its complement', { globs: ['web[!1]', 'old-*'] }, ['web2', 'old-ftp']],
  ['criteria add up, each VM once, in inventory order', { names: ['old-ftp'], tags: ['web'], hosts: ['hv1'] }, ['web1', 'web2', 'old-ftp']],
];

for (const [what, selector, expected] of CASES) {
  test(`job selectors: ${what}`, () => {
    assert.deepEqual(selectVms(selector, VMS).map((v) => v.name), expected);
  });
}

test('globs are anchored and escape regular-expression characters', () => {
  assert.ok(!globToRegExp('web').test('web1'));
  assert.ok(globToRegExp('a+b(c)').test('a+b(c)'));
  assert.ok(globToRegExp('[ab').test('[ab'));
});
