/**
 * @module cli
 * The `coffer` command line: {@link runCli} for tests and embedding, {@link main} for the
 * binary. Exit codes are in exit-codes.ts and the README.
 */
export { runCli, main } from './main.js';
export { ExitCode, exitCodeOf } from './exit-codes.js';
export type { CommandContext } from './context.js';
