import { setFlagsFromString } from 'node:v8';

/**
 * Keeps the code run from now on at V8's baseline tier (Sparkplug): no function is compiled
 * again by the optimizing compilers (`--max-opt=1`). For `coffer disk convert` this saves CPU:
 * a convert runs for a second or two and spends it in the kernel copying pages, and its JS
 * (a few promises and table lookups per 2 MiB block) runs hot just long enough for TurboFan to
 * compile it on V8's helper threads, ~0.1 s of CPU that is never paid back — on two cores,
 * CPU taken from the threads that read and write. The flag is read each time V8 decides to
 * optimize a function, so setting it at run time takes effect at once. An operator who sets
 * `--max-opt` (or another tiering flag) in the command line or NODE_OPTIONS keeps that choice.
 *
 * Measured 2026-11-26 on the 4 GiB bench disk (bench/README.md, "Disk formats"), interleaved
 * runs on the loaded shared machine: see the figures there.
 */
export function stayAtBaselineTier(): void {
  const options = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`;
  if (/--max-opt|--(no-)?(opt|turbofan|maglev|sparkplug)\b|--jitless/.test(options)) return;
  setFlagsFromString('--max-opt=1');
}
