import { setFlagsFromString } from 'node:v8';

/**
 * Keeps the main thread's young generation at V8's initial size (1 MiB semi-spaces) instead
 * of letting it grow to 16 MiB semi-spaces (32 MiB of resident memory): a backup, restore or
 * verify makes small objects per chunk for minutes, so the young generation always grew to
 * its maximum, and issue #2 bounds the whole process at 256 MiB RSS.
 *
 * `--max-semi-space-size` is read only when the heap is set up, so it cannot be set from
 * inside the process; the growth factor is read each time the young generation would grow,
 * so setting it to 1 keeps the initial size (checked with `v8.getHeapSpaceStatistics()`: new
 * space 2 MiB instead of 32). An operator who sets
 * `--max-semi-space-size` (the systemd unit's NODE_OPTIONS does) keeps that choice.
 *
 * Measured 2026-11-26 on the bench's 4 GiB format 2 full backup, back to back: see
 * bench/README.md, "Repository format 2".
 */
export function keepYoungGenerationSmall(): void {
  const options = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`;
  if (/--max-semi-space-size|--semi-space-growth-factor/.test(options)) return;
  const apply = () => setFlagsFromString('--semi-space-growth-factor=1');
  apply();
  // Starting or stopping a worker thread (the codec pool's) puts V8's flags back to the
  // process's command line: apply it again then.
  process.on('worker', (worker) => {
    worker.once('online', apply);
    worker.once('exit', apply);
  });
}
