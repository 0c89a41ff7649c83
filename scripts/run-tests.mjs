#!/usr/bin/env node
/**
 * Runs the compiled test suite (`node --test … dist/`) with a private temporary folder, so a
 * run never leaves files behind on the machine, and says which tests forgot to clean up.
 *
 * Every test process inherits TMPDIR=<system tmp>/ct-XXXXXX (short: Unix socket paths of
 * QEMU, libvirt and PostgreSQL under it must stay under 108 bytes). Disks built once for many
 * tests (src/testing cachedFixture) stay in <system tmp>/coffer-fixtures-v1 through
 * COFFER_TEST_FIXTURES, so later runs reuse them. New repository keys are made cheap to derive
 * (COFFER_TESTONLY_WEAKEN_KDF=1). At the end the folder's leftovers are listed
 * (a test that does not remove what it made is a bug to fix) and the folder is removed. The
 * exit code is node --test's.
 *
 *   node scripts/run-tests.mjs [extra node --test arguments]
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const systemTmp = tmpdir();
const runTmp = mkdtempSync(join(systemTmp, 'ct-'));
chmodSync(runTmp, 0o1777); // like /tmp: PostgreSQL, libvirt and QEMU run as other users under it
const args = ['--test', '--test-concurrency=2', '--test-force-exit', '--test-timeout=900000', ...process.argv.slice(2)];
if (!process.argv.slice(2).some((a) => !a.startsWith('-'))) args.push('dist/');

const child = spawn(process.execPath, args, {
  stdio: 'inherit',
  // COFFER_TESTONLY_WEAKEN_KDF: the keys of every repository the tests make cost scrypt N = 2^10,
  // not 2^16; the suite runs `coffer` thousands of times, each deriving a key (src/repo/keys/key-file.ts).
  env: { ...process.env, TMPDIR: runTmp, COFFER_TESTONLY_WEAKEN_KDF: '1', COFFER_TEST_FIXTURES: process.env.COFFER_TEST_FIXTURES ?? join(systemTmp, 'coffer-fixtures-v1') },
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));

child.on('exit', (code, signal) => {
  const left = safeList(runTmp);
  if (left.length > 0) {
    const shown = left.slice(0, 20).join(' ');
    process.stderr.write(`# the tests left ${left.length} entr${left.length === 1 ? 'y' : 'ies'} in their temporary folder (each is a test that does not clean up): ${shown}${left.length > 20 ? ' …' : ''}\n`);
  }
  try {
    rmSync(runTmp, { recursive: true, force: true, maxRetries: 3 });
  } catch (error) {
    process.stderr.write(`# could not remove ${runTmp}: ${error instanceof Error ? error.message : String(error)}\n`);
  }
  process.exit(code ?? (signal === 'SIGINT' ? 130 : 1));
});

function safeList(dir) {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}
