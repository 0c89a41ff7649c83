import { setFlagsFromString } from 'node:v8';

/**
 * V8's `--interrupt-budget` in Node 20 (V8 11.3): roughly the bytecode a function runs
 * between two checks of whether to compile it with TurboFan.
 */
const V8_DEFAULT_INTERRUPT_BUDGET = 67_584;

/**
 * How much later functions are optimized: 8 × the budget. Measured on the bench's file tree
 * (bench/README.md, "Files"): an incremental file backup spent ~0.3 CPU-s of its ~1.5 in
 * TurboFan on V8's helper threads (`perf record`: 1.3 s of compile jobs in `--trace-opt`,
 * the walk's functions, tree decoding, index lookups, each run for well under a second), and
 * 8 × cut that by ~0.2 CPU-s; the loops that run long (FastCDC's `cut`) are still optimized.
 * A full backup was ~4 % slower with it (its per-file code runs long enough to pay back its
 * compile), so only an incremental asks for it.
 */
const BUDGET_FACTOR = 8;

/**
 * Makes V8 optimize (TurboFan) only code that runs hot for longer than usual: for a command
 * whose work is mostly short-lived (an incremental file backup compares metadata for a second
 * or two), the compile jobs of functions that run hot only briefly cost more CPU than they
 * save. The flag is read each time a function's budget is reset, so setting it at run time
 * takes effect at once, and it stays set when the codec pool's worker threads start and stop
 * (unlike the young generation's growth factor, young-generation.ts; the test pins it). An
 * operator who sets `--interrupt-budget` or another tiering flag keeps that choice.
 */
export function optimizeOnlyLongRunningCode(): void {
  const options = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`;
  if (/--interrupt-budget|--max-opt|--(no-)?(opt|turbofan|maglev|sparkplug)\b|--jitless/.test(options)) return;
  setFlagsFromString(`--interrupt-budget=${BUDGET_FACTOR * V8_DEFAULT_INTERRUPT_BUDGET}`);
}
