import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const moduleUrl = new URL('./young-generation.js', import.meta.url).href;

/** New space (MiB) after allocating many short-lived objects in a child process, with a worker thread started and stopped. */
async function newSpaceAfterChurn(keepSmall: boolean, execArgv: string[] = []): Promise<number> {
  const script = `
    import { keepYoungGenerationSmall } from ${JSON.stringify(moduleUrl)};
    import { getHeapSpaceStatistics } from 'node:v8';
    import { Worker } from 'node:worker_threads';
    if (${keepSmall}) keepYoungGenerationSmall();
    const worker = new Worker('setTimeout(() => {}, 50)', { eval: true });
    await new Promise((resolve) => worker.once('exit', resolve));
    let keep = [];
    for (let i = 0; i < 3e6; i++) { keep.push({ i, list: [i] }); if (keep.length > 50000) keep = []; }
    const space = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    console.log(space.space_size / 1048576);
  `;
  const { stdout } = await run(process.execPath, [...execArgv, '--input-type=module', '-e', script], { timeout: 30_000 });
  return Number(stdout.trim());
}

test('the young generation stays at its initial size even after a worker thread starts and stops', async () => {
  assert.ok((await newSpaceAfterChurn(false)) >= 16, 'without it, V8 grows the young generation (the test would not show anything)');
  assert.ok((await newSpaceAfterChurn(true)) <= 4);
});

test('an explicit --max-semi-space-size is left alone', async () => {
  assert.equal(await newSpaceAfterChurn(true, ['--max-semi-space-size=8']), 16);
});
