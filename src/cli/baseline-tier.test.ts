import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const moduleUrl = new URL('./baseline-tier.js', import.meta.url).href;

/** Whether a hot function ends up optimized (TurboFan) in a child process, with or without the call. */
async function optimizedWhenHot(stayAtBaseline: boolean, execArgv: string[] = []): Promise<boolean> {
  const script = `
    import { stayAtBaselineTier } from ${JSON.stringify(moduleUrl)};
    if (${stayAtBaseline}) stayAtBaselineTier();
    function sum(values) { let total = 0; for (let i = 0; i < values.length; i++) total += values[i] * 3; return total; }
    const values = Array.from({ length: 1000 }, (_, i) => i);
    let keep = 0;
    for (let round = 0; round < 20000; round++) keep += sum(values);
    // V8's optimization status: bit 4 (16) is "optimized".
    console.log((%GetOptimizationStatus(sum) & 16) !== 0, keep > 0);
  `;
  const { stdout } = await run(process.execPath, ['--allow-natives-syntax', ...execArgv, '--input-type=module', '-e', script], { timeout: 30_000 });
  return stdout.trim().startsWith('true');
}

test('after stayAtBaselineTier a hot function is no longer optimized', async () => {
  assert.equal(await optimizedWhenHot(false), true, 'without it, V8 optimizes the hot function (the test would not show anything)');
  assert.equal(await optimizedWhenHot(true), false);
});

test('an explicit tiering flag is left alone', async () => {
  assert.equal(await optimizedWhenHot(true, ['--max-opt=999']), true);
});
