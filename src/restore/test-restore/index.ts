export { testRestore, type TestRestoreOptions } from './test-restore.js';
export type { TestRestoreReport, DiskCheck, VolumeCheck, CheckerResult } from './report.js';
export { checkerCommand } from './fs-checkers.js';
