import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeName } from '../../names/index.js';
import { globToRegExp } from './name-glob.js';

const latin1 = (text: string): string => decodeName(Buffer.from(text, 'latin1'));

test('a glob matches whole names with *, ?, classes and escaped characters', () => {
  assert.ok(globToRegExp('*.log').test('syslog.log'));
  assert.ok(!globToRegExp('*.log').test('syslog.log.1'));
  assert.ok(globToRegExp('?ar').test('bar'));
  assert.ok(globToRegExp('[!a]ar').test('bar') && !globToRegExp('[!a]ar').test('aar'));
  assert.ok(globToRegExp('a\\*').test('a*') && !globToRegExp('a\\*').test('ab'));
  assert.ok(globToRegExp('a\\\\b').test('a\\b'), '\\\\ is a backslash');
  assert.ok(globToRegExp('README', true).test('readme'));
});

test('\\xNN in a glob is a byte, as listings print it: *\\xe9 finds the Latin-1 name, not the text xe9', () => {
  const acute = latin1('caf\xe9');
  const grave = latin1('caf\xe8');
  const literal = 'caf\\xe9';
  const pattern = globToRegExp('*\\xe9');
  assert.ok(pattern.test(acute), 'the raw byte E9');
  assert.ok(!pattern.test(grave));
  assert.ok(!pattern.test(literal), 'not the text \\xe9');
  assert.ok(!pattern.test('cafxe9'));
  assert.ok(globToRegExp('*\\\\xe9').test(literal), 'the text is written as ls prints it: \\\\xe9');
  assert.ok(globToRegExp('caf\\xc3\\xa9').test('café'), 'bytes that spell UTF-8 are that character');
  assert.ok(globToRegExp('caf?').test(acute), '? takes a raw byte');
  assert.ok(globToRegExp('caf[\\xe8\\xe9]').test(grave) && globToRegExp('caf[\\xe8\\xe9]').test(acute));
  assert.ok(!globToRegExp('caf[!\\xe9]').test(acute));
  assert.ok(globToRegExp('d\\xe9j\\xe0').test(latin1('d\xe9j\xe0')));
  assert.ok(globToRegExp('a\\x2a').test('a*') && !globToRegExp('a\\x2a').test('ab'), '\\x2a is a literal *');
});
