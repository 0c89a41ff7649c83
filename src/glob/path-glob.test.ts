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
