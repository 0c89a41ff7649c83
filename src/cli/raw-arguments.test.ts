import assert from 'node:assert/strict';
import { test } from 'node:test';
import { argumentsWithRawBytes } from './raw-arguments.js';

/** A command line as /proc/self/cmdline holds it: NUL-terminated entries. */
const cmdline = (...entries: (string | Buffer)[]) => (): Buffer => Buffer.concat(entries.flatMap((e) => [Buffer.isBuffer(e) ? e : Buffer.from(e), Buffer.of(0)]));

const latin1 = Buffer.from('/srv/caf\xe9', 'latin1');

test('an argument Node decoded with U+FFFD gets its bytes back, as a name decodes them; the others stay as given', () => {
  const args = ['backup', '--files', '/srv/caf\uFFFD', 'plain'];
  assert.deepEqual(argumentsWithRawBytes(args, cmdline('/usr/bin/node', '--max-old-space-size=512', 'bin/coffer.js', 'backup', '--files', latin1, 'plain')), ['backup', '--files', '/srv/caf\udce9', 'plain']);
});

test('a real U+FFFD typed as UTF-8 stays one', () => {
  const typed = '/srv/a\uFFFD';
  assert.deepEqual(argumentsWithRawBytes([typed], cmdline('node', 'coffer', typed)), [typed]);
});

test('a command line that does not match what Node gave (rewritten, unreadable) leaves every argument as it is', () => {
  const args = ['ls', '/srv/caf\uFFFD'];
  assert.deepEqual(argumentsWithRawBytes(args, cmdline('node', 'coffer', 'ls', Buffer.from('/srv/other\xe9', 'latin1'))), args);
  assert.deepEqual(argumentsWithRawBytes(args, cmdline('coffer')), args, 'fewer entries than arguments');
  assert.deepEqual(argumentsWithRawBytes(args, () => undefined), args);
});

test('without U+FFFD the command line is not read', () => {
  assert.deepEqual(argumentsWithRawBytes(['snapshots'], () => assert.fail('read')), ['snapshots']);
});
