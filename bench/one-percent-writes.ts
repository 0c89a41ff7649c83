/**
 * The live part's guest writes (issue #5): ~1% of a disk rewritten, half as scattered 4 KiB
 * writes and half as 4 MiB runs, at positions from a fixed xorshift seed, so every run and
 * every user of it (bench/live.ts through QEMU, bench/serve-speed.ts on a file) writes the same.
 *
 * @module
 */

/** One write of the plan: where, how long, and the byte it fills with (1..250). */
export interface PlannedWrite {
  readonly offset: number;
  readonly length: number;
  readonly fill: number;
}

/** The writes for a disk of `diskBytes`, in order. */
export function* onePercentWrites(diskBytes: number): Generator<PlannedWrite> {
  const budget = Math.floor(diskBytes / 100);
  let state = 0x9e3779b9;
  const random = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  let written = 0;
  while (written < budget / 2) {
    yield { offset: Math.floor(random() * (diskBytes / 4096)) * 4096, length: 4096, fill: 1 + (written % 250) };
    written += 4096;
  }
  while (written < budget) {
    yield { offset: Math.floor(random() * (diskBytes / (4 << 20))) * (4 << 20), length: 4 << 20, fill: 1 + (written % 250) };
    written += 4 << 20;
  }
}
