import assert from 'node:assert/strict';
import { test } from 'node:test';
import { globSource } from './path-glob.js';

const matches = (pattern: string, path: string) => new RegExp(`^${globSource(pattern)}$`, 's').test(path);

test('path globs: * stays within a directory, ** crosses them, ? is one character, classes and escapes', () => {
  const table: [string, string, boolean][] = [
    ['*.log', 'app.log', true],
    ['*.log', 'var/app.log', false],
    ['**/*.log', 'var/log/app.log', true],
    ['cache/**', 'cache/a/b', true],
    ['db-??.sql', 'db-01.sql', true],
    ['db-??.sql', 'db-1.sql', false],
    ['db-?.sql', 'db-/.sql', false],
    ['[abc].txt', 'b.txt', true],
    ['[!abc].txt', 'b.txt', false],
    ['[^abc].txt', 'd.txt', true],
    ['\\*.txt', '*.txt', true],
    ['\\*.txt', 'a.txt', false],
    ['[unclosed', '[unclosed', true],
    ['a.b', 'axb', false],
    ['(x)+', '(x)+', true],
  ];
  for (const [pattern, path, expected] of table) assert.equal(matches(pattern, path), expected, `${pattern} vs ${path}`);
});

test('path globs: \\xNN is a byte of a name that is not UTF-8 (as listings print it), \\\\ a backslash', () => {
  const latin1 = 'caf\udce9'; // the bytes 63 61 66 E9, as names/byte-names.ts decodes them
  const table: [string, string, boolean][] = [
    ['caf\\xe9', latin1, true],
    ['caf\\xe9', 'cafxe9', false],
    ['caf\\xe9', 'café', false],
    ['caf\\xc3\\xa9', 'café', true],
    ['*\\xe9', latin1, true],
    ['caf[\\xe8\\xe9]', latin1, true],
    ['caf[!\\xe9]', latin1, false],
    // A run in a class spells what it spells outside one: "é" here, not the bytes C3 or A9.
    ['caf[\\xc3\\xa9]', 'café', true],
    ['caf[\\xc3\\xa9]', 'caf\udcc3', false],
    ['caf[e\\xc3\\xa9]', 'cafe', true],
    ['caf[!\\xc3\\xa9]', 'café', false],
    ['caf[\\xc3\\xa9\\xe9]', latin1, true],
    ['a[\\x2d]b', 'a-b', true],
    ['a[\\x2d]b', 'a,b', false],
    ['caf\\\\xe9', 'caf\\xe9', true],
    ['caf\\\\xe9', latin1, false],
    ['/srv/caf\\xe9/**', `/srv/${latin1}/x/y`, true],
  ];
  for (const [pattern, path, expected] of table) assert.equal(matches(pattern, path), expected, `${pattern} vs ${JSON.stringify(path)}`);
});
