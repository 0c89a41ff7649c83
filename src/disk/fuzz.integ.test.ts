/**
 * Every format reader over mutated real images, for a bounded time: whatever the bytes, a
 * reader either reads or throws a CofferError with a code a user can act on; it never
 * throws anything else, never hangs, and never allocates without bound. The seed of each
 * run is printed so a failure can be replayed (COFFER_FUZZ_SEED, COFFER_FUZZ_MS).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { isCofferError } from '../errors/index.js';
import { buildCowd, buildSeSparse, cowdDescriptor, makeDifferencingVhd, requireTools, seededBytes, seededRandom as random, seSparseDescriptor, type SeSparseGrain } from '../testing/index.js';
import { openDiskImage } from './open-image.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const BUDGET_MS = Number(process.env.COFFER_FUZZ_MS ?? 2500);
const EXPECTED = ['E_IMAGE_INVALID', 'E_UNSUPPORTED_FORMAT', 'E_SOURCE_UNREADABLE', 'E_SOURCE_SHRUNK'] as const;
let work: string;

/** Small real images, one per format and subformat, made by qemu-img from the same raw disk. */
const IMAGES: { name: string; args: string[] }[] = [
  { name: 'qcow2', args: ['-O', 'qcow2', '-o', 'cluster_size=4k'] },
  { name: 'qcow2-compressed', args: ['-O', 'qcow2', '-c', '-o', 'cluster_size=4k'] },
  { name: 'qcow2-extended-l2', args: ['-O', 'qcow2', '-o', 'extended_l2=on,cluster_size=64k'] },
  { name: 'vhd-dynamic', args: ['-O', 'vpc', '-o', 'subformat=dynamic,force_size=on'] },
  { name: 'vhd-fixed', args: ['-O', 'vpc', '-o', 'subformat=fixed,force_size=on'] },
  { name: 'vmdk-sparse', args: ['-O', 'vmdk', '-o', 'subformat=monolithicSparse'] },
  { name: 'vmdk-stream', args: ['-O', 'vmdk', '-o', 'subformat=streamOptimized'] },
  { name: 'vhdx', args: ['-O', 'vhdx'] },
];

/**
 * Top images of chains over intact parents (the mutated child must still fail cleanly when
 * its parent is fine), and a text descriptor with its flat extent file. Built in `before`:
 * their backing files are named by absolute path, so the mutant beside them finds them.
 */
const CHAINS: { name: string; build: (raw: string) => Promise<void>; mutates?: string }[] = [
  {
    name: 'qcow2-overlay',
    build: async () => {
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4k', '-b', join(work, 'qcow2'), '-F', 'qcow2', join(work, 'qcow2-overlay')]);
      await run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x33 64k 200k', '-c', 'write -z 1M 128k', join(work, 'qcow2-overlay')]);
    },
  },
  {
    name: 'vmdk-delta',
    build: async () => {
      await run('qemu-img', ['create', '-q', '-f', 'vmdk', '-b', join(work, 'vmdk-sparse'), '-F', 'vmdk', join(work, 'vmdk-delta')]);
      await run('qemu-io', ['-f', 'vmdk', '-c', 'write -P 0x44 128k 300k', join(work, 'vmdk-delta')]);
    },
  },
  {
    // A seSparse extent (hand-built: qemu-img cannot write one) behind an intact descriptor
    // that names the mutant: the extent's bytes are what is mutated.
    name: 'vmdk-sesparse',
    mutates: 'vmdk-sesparse-extent',
    build: async () => {
      const grains = new Map<number, SeSparseGrain>([[0, { kind: 'data', fill: 1 }], [1, { kind: 'zero' }], [300, { kind: 'data', fill: 2, index: 4097 }]]);
      await buildSeSparse(join(work, 'vmdk-sesparse-extent'), { size: 2 * MiB, grains });
      await writeFile(join(work, 'vmdk-sesparse'), seSparseDescriptor('vmdk-sesparse-extent.mutant', 2 * MiB));
    },
  },
  {
    // An ESX sparse (COWD) extent, hand-built like the seSparse one, behind an intact descriptor.
    name: 'vmdk-cowd',
    mutates: 'vmdk-cowd-extent',
    build: async () => {
      await buildCowd(join(work, 'vmdk-cowd-extent'), { sectors: 4096, grainSectors: 1, grains: new Map([[0, 1], [7, 2], [4095, 3]]) });
      await writeFile(join(work, 'vmdk-cowd'), cowdDescriptor('vmdk-cowd-extent.mutant', 4096));
    },
  },
  {
    // A differencing VHD (hand-made from a dynamic one: qemu-img cannot make one) whose parent
    // is the intact dynamic VHD, named by its absolute locator.
    name: 'vhd-differencing',
    build: async () => {
      const child = join(work, 'vhd-differencing');
      await run('qemu-img', ['create', '-q', '-f', 'vpc', '-o', 'subformat=dynamic,force_size=on', child, String(2 * MiB)]);
      await run('qemu-io', ['-f', 'vpc', '-c', 'write -P 0x55 64k 100k', child]);
      await makeDifferencingVhd(child, join(work, 'vhd-dynamic'), [{ offset: 64 * 1024, length: 100 * 1024 }], [{ platform: 'W2ku', path: join(work, 'vhd-dynamic') }]);
    },
  },
  {
    name: 'vmdk-descriptor',
    build: (raw) => run('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=monolithicFlat', raw, join(work, 'vmdk-descriptor')]).then(() => {}),
  },
];

before(async () => {
  await requireTools('qemu-img', 'qemu-io');
  work = await mkdtemp(join(tmpdir(), 'coffer-fuzz-'));
  const raw = join(work, 'source.raw');
  const disk = Buffer.alloc(2 * MiB);
  seededBytes(7, 300_000).copy(disk, 100_000);
  Buffer.alloc(200_000, 'text ').copy(disk, MiB);
  await writeFile(raw, disk);
  for (const image of IMAGES) await run('qemu-img', ['convert', '-f', 'raw', ...image.args, raw, join(work, image.name)]);
  for (const chain of CHAINS) await chain.build(raw);
});
after(() => rm(work, { recursive: true, force: true }));


function mutate(bytes: Buffer, next: () => number): Buffer {
  const out = Buffer.from(bytes);
  const flips = 1 + Math.floor(next() * 8);
  // Most structure sits in the first clusters: aim half the damage there.
  for (let i = 0; i < flips; i++) {
    const span = next() < 0.5 ? Math.min(out.length, 64 * 1024) : out.length;
    const at = Math.floor(next() * span);
    out[at] = next() < 0.3 ? 0xff : Math.floor(next() * 256);
  }
  return next() < 0.1 ? out.subarray(0, Math.floor(next() * out.length)) : out;
}

for (const image of [...IMAGES, ...CHAINS]) {
  test(`fuzz ${image.name}: mutated images read or fail with a coded error, never anything else`, async () => {
    const seed = Number(process.env.COFFER_FUZZ_SEED ?? Date.now() % 2 ** 31);
    const next = random(seed);
    const mutated = 'mutates' in image && image.mutates !== undefined ? image.mutates : image.name;
    const original = await readFile(join(work, mutated));
    const mutant = join(work, `${mutated}.mutant`);
    const path = mutated === image.name ? mutant : join(work, image.name);
    // The unmutated bytes must read: else every mutant fails for a reason no mutation made.
    await writeFile(mutant, original);
    const intact = await openDiskImage(path);
    await intact.read(0, Math.min(intact.size, 4 * MiB)).finally(() => intact.close());
    const started = Date.now();
    let runs = 0;
    // At least 11 runs whatever the machine's load (each has its own deadline), then until the budget is spent.
    while (runs < 11 || Date.now() - started < BUDGET_MS) {
      await writeFile(mutant, mutate(original, next));
      runs += 1;
      try {
        const device = await openDiskImage(path);
        try {
          assert.ok(device.size <= 2 ** 56, 'absurd sizes are refused at open');
          const length = Math.min(device.size, 4 * MiB);
          if (length > 0) await device.read(0, length);
          for await (const _ of device.extents(0, length)) {
            // walking the map must terminate
          }
          // So must placing the bytes, each placement inside its file (a convert copies from there).
          for await (const placement of device.placements?.(0, length) ?? []) {
            if (placement.kind === 'file') assert.ok(placement.at >= 0 && Number.isSafeInteger(placement.at), `placed at ${placement.at}`);
          }
        } finally {
          await device.close();
        }
      } catch (error) {
        if (!EXPECTED.some((code) => isCofferError(error, code))) {
          assert.fail(`seed ${seed}, run ${runs}: ${image.name} threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
        }
      }
    }
  });
}
