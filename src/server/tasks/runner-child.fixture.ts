/**
 * A task runner as its own process, for the test that kills it with -9
 * (runner-restart.integ.test.ts). Argument: JSON `{ db, vms, bandwidth }`. Starts a run of the
 * VMs, prints its id on a line, and runs until killed.
 */
import { openStateDatabase } from '../state/index.js';
import { TaskRunner } from './task-runner.js';
import type { BandwidthRule } from './bandwidth-rules.js';
import type { VmTarget } from './task-types.js';

const config = JSON.parse(process.argv[2] ?? '{}') as { db: string; vms: VmTarget[]; bandwidth: BandwidthRule[] };
const state = await openStateDatabase({ file: config.db });
const runner = new TaskRunner(state.db, { threads: 1, tickMs: 100, bandwidth: config.bandwidth, limits: { global: 2 } });
await runner.start();
const run = await runner.startRun({ job: 'nightly', reason: 'schedule', owner: 'scheduler', vms: config.vms });
process.stdout.write(`${run.id}\n`);
setInterval(() => {}, 60_000);
