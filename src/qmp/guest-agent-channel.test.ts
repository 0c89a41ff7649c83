import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseChardevFilename } from './index.js';

const CASES: { filename: string; expected: ReturnType<typeof parseChardevFilename> | RegExp }[] = [
  { filename: 'disconnected:unix:/run/vm/qga.sock,server=on', expected: { kind: 'socket', path: '/run/vm/qga.sock', chardev: 'c', inUse: false } },
  { filename: 'unix:/run/vm/qga.sock,server=on', expected: { kind: 'socket', path: '/run/vm/qga.sock', chardev: 'c', inUse: true } },
  { filename: 'disconnected:unix:qga.sock,server=on', expected: /relative to QEMU's working folder/ },
  { filename: 'disconnected:unix:/run/x.sock', expected: /connects out to \/run\/x.sock/ },
  { filename: 'pty:/dev/pts/3', expected: /"pty:\/dev\/pts\/3", not a unix socket/ },
  { filename: 'disconnected:tcp:127.0.0.1:4444,server=on', expected: /not a unix socket/ },
];

test('query-chardev filenames of the agent channel', () => {
  for (const { filename, expected } of CASES) {
    const got = parseChardevFilename('c', filename);
    if (expected instanceof RegExp) {
      assert.equal(got.kind, 'unusable', filename);
      assert.match(got.kind === 'unusable' ? got.reason : '', expected, filename);
    } else {
      assert.deepEqual(got, expected, filename);
    }
  }
});
