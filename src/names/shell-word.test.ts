import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { shellWord } from './shell-word.js';

test('a word reaches a program through sh unchanged, quoted only when it must be', () => {
  assert.equal(shellWord('/srv/backup/main'), '/srv/backup/main');
  assert.equal(shellWord('s3:https://rgw.example.com:7480/b/p'), 's3:https://rgw.example.com:7480/b/p');
  assert.equal(shellWord('my repo'), "'my repo'");
  const words = ['plain', 'two words', "it's", '$HOME', '`date`', 'a"b', 'back\\slash', '*', 'new\nline', '', '-', 'é'];
  for (const word of words) {
    const echoed = execFileSync('sh', ['-c', `printf '%s' ${shellWord(word)}`], { encoding: 'utf8' });
    assert.equal(echoed, word, `${JSON.stringify(word)} as ${shellWord(word)}`);
  }
});
