import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ToolName } from './config.js';
import { cpuSeconds, stepFloor, stepWork, type PrimitiveRates } from './floor-model.js';
import type { StepName, StepResult } from './results.js';

const GB = 1e9;

function r(tool: ToolName, step: StepName, wallS: number, cpuS: number, reported?: Record<string, unknown>): StepResult {
  return { tool, step, wallS, cpuS, maxRssKiB: 1, ...(reported ? { reported } : {}) };
}

/** One GB per CPU-second for everything, so CPU-seconds equal gigabytes of work. */
const unit: PrimitiveRates = { read: GB, mac: GB, compress: GB, decompress: GB, encrypt: GB, write: GB };

const run: StepResult[] = [
  r('coffer', 'full', 5, 8, { bytesRead: 2 * GB, bytesNew: 2 * GB, bytesStored: 0.5 * GB }),
  r('coffer', 'incr-scattered', 2, 3, { bytesRead: 2 * GB, bytesNew: 0.4 * GB, bytesStored: 0.1 * GB }),
  r('coffer', 'incr-clustered', 1, 2, { bytesRead: 2.2 * GB, bytesNew: 0.2 * GB, bytesStored: 0.05 * GB }),
  r('coffer', 'clone', 1, 2, { bytesRead: 2 * GB, bytesNew: 0, bytesStored: 0 }),
  r('coffer', 'restore', 4, 5),
  r('restic', 'full', 10, 20),
  r('borg', 'full', 12, 12),
  r('borg', 'restore', 6, 6),
];

test('a backup reads and hashes what it read, compresses what is new, encrypts and writes what it stored', () => {
  assert.deepEqual(stepWork(run, 'full'), { read: 2 * GB, mac: 2 * GB, compress: 2 * GB, decompress: 0, encrypt: 0.5 * GB, write: 0.5 * GB });
  assert.equal(cpuSeconds(stepWork(run, 'full'), unit), 7);
});

test('a restore decodes the last backup of vm1 at the full backup\'s compression', () => {
  const work = stepWork(run, 'restore');
  assert.equal(work.decompress, 2.2 * GB);
  assert.equal(work.mac, 2.2 * GB);
  assert.equal(work.write, 2.2 * GB);
  assert.ok(Math.abs(work.read - 0.55 * GB) < 1);
});

test('a verify decodes everything the run stored', () => {
  const work = stepWork(run, 'verify');
  assert.ok(Math.abs(work.decompress - 2.6 * GB) < 1);
  assert.ok(Math.abs(work.read - 0.65 * GB) < 1);
  assert.equal(work.write, 0);
});

test('the floor is compared with the faster peer and says how many CPUs the target needs', () => {
  const floor = stepFloor(run, 'full', 0.33, unit, 2);
  assert.ok(floor);
  assert.equal(floor.peerWallS, 10);
  assert.equal(floor.floorCpuS, 7);
  assert.equal(floor.floorWallS, 3.5);
  assert.equal(floor.floorRatio, 0.35);
  assert.ok(Math.abs(floor.cpusForTargetAtFloor - 7 / 3.3) < 1e-9);
  assert.ok(Math.abs(floor.cpusForTargetAsMeasured - 8 / 3.3) < 1e-9);
});

test('a step without a peer has no floor', () => {
  assert.equal(stepFloor(run, 'verify', 0.5, unit, 2), undefined);
});
