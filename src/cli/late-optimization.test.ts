import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const moduleUrl = new URL('./late-optimization.js', import.meta.url).href;

/**
 * How many calls of a small function V8 makes before TurboFan has optimized it, in a child
 * process, with or without the call (and, with `worker`, after a worker thread started and
 * stopped: that puts V8's flags back). Compiled on the main thread
 * (`--no-concurrent-recompilation`), so the count does not depend on timing.
 */
async function callsBeforeOptimized(options: { late: boolean; worker?: boolean; execArgv?: string[] }): Promise<number> {
  const script = `
    import { optimizeOnlyLongRunningCode } from ${JSON.stringify(moduleUrl)};
    import { Worker } from 'node:worker_threads';
    import { once } from 'node:events';
    if (${options.late}) optimizeOnlyLongRunningCode();
    if (${options.worker === true}) await once(new Worker('1', { eval: true }), 'exit');
    function sum(values) { let total = 0; for (let i = 0; i < values.length; i++) total += values[i] * 3; return total; }
    const values = Array.from({ length: 100 }, (_, i) => i);
    let calls = 0;
    // V8's optimization status: bit 4 (16) is "optimized".
    while ((%GetOptimizationStatus(sum) & 16) === 0 && calls < 1e6) { sum(values); calls++; }
    console.log(calls);
  `;
  const argv = ['--allow-natives-syntax', '--no-concurrent-recompilation', ...(options.execArgv ?? []), '--input-type=module', '-e', script];
  const { stdout } = await run(process.execPath, argv, { timeout: 30_000 });
  return Number(stdout.trim());
}

test('optimizeOnlyLongRunningCode: a hot function is optimized several times later, but still optimized', async () => {
  const usual = await callsBeforeOptimized({ late: false });
  const late = await callsBeforeOptimized({ late: true });
  assert.ok(usual > 0 && usual < 1e6, `without it, V8 optimizes the function (after ${usual} calls)`);
  assert.ok(late > 4 * usual, `optimized after ${late} calls with it, ${usual} without`);
  assert.ok(late < 1e6, 'code that stays hot is still optimized');
});

test('optimizeOnlyLongRunningCode survives a worker thread starting and stopping', async () => {
  const usual = await callsBeforeOptimized({ late: false, worker: true });
  const late = await callsBeforeOptimized({ late: true, worker: true });
  assert.ok(late > 4 * usual, `optimized after ${late} calls with it, ${usual} without`);
});

test('optimizeOnlyLongRunningCode leaves an explicit tiering flag alone', async () => {
  const usual = await callsBeforeOptimized({ late: false });
  const explicit = await callsBeforeOptimized({ late: true, execArgv: ['--interrupt-budget=67584'] });
  assert.ok(explicit < 2 * usual, `optimized after ${explicit} calls with an explicit budget, ${usual} without the call`);
});
