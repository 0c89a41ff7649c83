export { testRestore, type TestRestoreOptions } from './test-restore.js';
export type { TestRestoreReport, DiskCheck, VolumeCheck, CheckerResult, BootResult } from './report.js';
export { bootCheck, BOOT_BUSES, type BootBus, type BootCheckOptions } from './boot-check.js';
export { BOOT_FIRMWARES, type BootFirmwareChoice } from './boot-firmware.js';
export { checkerCommand } from './fs-checkers.js';
