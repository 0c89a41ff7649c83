/**
 * listVolumes over mutated real disks, for a bounded time: whatever the bytes of the partition
 * tables, EBRs, GPT headers and entries, PV labels and LVM metadata, listing and reading the
 * volumes either works or throws a CofferError; never another error, never a hang (each
 * operation has a timeout). Mutations are applied by an overlay device, so the fixtures stay
 * untouched. The seed is printed on failure (COFFER_FUZZ_SEED, COFFER_FUZZ_MS replay/extend).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PatchedDevice } from '../blockdev/patched-device.test-support.js';
import { RawImage } from '../disk/index.js';
import { isCofferError } from '../errors/index.js';
import { buildGptVolumesDisk, buildLvmOneDisk, buildLvmTwoDisks, buildMbrVolumesDisk, requireTools, seededRandom as random, withDeadline } from '../testing/index.js';
import { listVolumes } from './index.js';
import { parseLvmConfig } from './lvm/config-text.js';
import { readMetadataText } from './lvm/metadata-area.js';
import { findPvLabel } from './lvm/pv-label.js';
import { interpretVg } from './lvm/vg-metadata.js';

const BUDGET_MS = Number(process.env['COFFER_FUZZ_MS'] ?? 2500) / 5;
const OPERATION_TIMEOUT_MS = 2000;
const KiB = 1024;
const MiB = 1024 * KiB;



const withTimeout = <T>(what: string, work: Promise<T>): Promise<T> => withDeadline(what, work, OPERATION_TIMEOUT_MS);

/** Each fixture, and where its structures lie ([start, end) byte ranges worth breaking). */
const FIXTURES: { name: string; build: () => Promise<string[]>; areas: (sizes: number[]) => [disk: number, from: number, to: number][] }[] = [
  {
    name: 'GPT',
    build: async () => [await buildGptVolumesDisk()],
    areas: ([size]) => [[0, 0, 34 * 512], [0, size! - 33 * 512, size!], [0, 40894464, 40894464 + 4 * KiB]],
  },
  {
    name: 'MBR with logical partitions',
    build: async () => [await buildMbrVolumesDisk()],
    areas: () => [[0, 0, 512], [0, 34816 * 512, 34816 * 512 + 512], [0, 53248 * 512, 53248 * 512 + 512], [0, 71680 * 512, 71680 * 512 + 512]],
  },
  {
    name: 'LVM in a GPT partition',
    build: async () => (await buildLvmOneDisk()).disks,
    areas: () => [[0, 9 * MiB, 9 * MiB + 16 * KiB]],
  },
  {
    name: 'LVM on two disks',
    build: async () => (await buildLvmTwoDisks()).disks,
    areas: () => [[0, 0, 16 * KiB], [1, 0, 16 * KiB]],
  },
];

for (const fixture of FIXTURES) {
  test(`fuzz ${fixture.name}: mutated tables and metadata list or fail with a CofferError, never hang`, async () => {
    await requireTools('sfdisk', 'cryptsetup', 'lvcreate', 'losetup');
    const seed = Number(process.env['COFFER_FUZZ_SEED'] ?? Date.now() % 2 ** 31);
    const next = random(seed);
    const disks = await Promise.all((await fixture.build()).map((p) => RawImage.open(p)));
    const areas = fixture.areas(disks.map((d) => d.size));
    let runs = 0;
    let listed = 0;
    try {
      const started = Date.now();
      // A few runs however slow the machine (the budget bounds time, not coverage).
      while (runs <= 10 || Date.now() - started < BUDGET_MS) {
        runs++;
        const patches = disks.map(() => new Map<number, number>());
        const flips = 1 + Math.floor(next() * 12);
        for (let i = 0; i < flips; i++) {
          const [disk, from, to] = areas[Math.floor(next() * areas.length)]!;
          patches[disk]!.set(from + Math.floor(next() * (to - from)), next() < 0.3 ? 0xff : next() < 0.3 ? 0 : Math.floor(next() * 256));
        }
        const mutants = disks.map((d, i) => new PatchedDevice(d, patches[i]!, next() < 0.1 ? Math.floor(next() * d.size) : d.size));
        try {
          const volumes = await withTimeout('listVolumes', listVolumes(mutants));
          listed++;
          for (const volume of volumes) {
            const length = Math.min(volume.device.size, 64 * KiB);
            if (length > 0) await withTimeout(`read of ${volume.name}`, volume.device.read(volume.device.size - length, length));
            await withTimeout(`extents of ${volume.name}`, (async () => {
              for await (const _ of volume.device.extents()) {
                // walking the map must terminate
              }
            })());
          }
        } catch (error) {
          if (!isCofferError(error)) {
            assert.fail(`seed ${seed}, run ${runs}: ${error instanceof Error ? `${error.name}: ${error.message}\n${error.stack}` : String(error)}`);
          }
        }
      }
    } finally {
      await Promise.all(disks.map((d) => d.close()));
    }
    assert.ok(listed > runs / 4, `only ${listed} of ${runs} mutants listed: the mutations break more than the metadata`);
  });
}

test('fuzz the LVM metadata text parser behind its checksum: mutated real text parses or throws E_FS_CORRUPT', async () => {
  const seed = Number(process.env['COFFER_FUZZ_SEED'] ?? Date.now() % 2 ** 31);
  const next = random(seed);
  const disk = await RawImage.open((await buildLvmTwoDisks()).disks[0]!);
  let original: string;
  try {
    const label = findPvLabel(Buffer.from(await disk.read(0, 2048)))!;
    original = (await readMetadataText(disk, label.metadataAreas[0]!))!;
  } finally {
    await disk.close();
  }
  assert.ok(interpretVg(parseLvmConfig(original)).lvs.length === 2);
  const alphabet = '{}[]=,"#\\\n 0123456789-.abcxyz_';
  const started = Date.now();
  let runs = 0;
  // A few runs however slow the machine (the budget bounds time, not coverage).
  while (runs <= 10 || Date.now() - started < BUDGET_MS) {
    runs++;
    let text = original;
    for (let i = 1 + Math.floor(next() * 6); i > 0; i--) {
      const at = Math.floor(next() * text.length);
      const c = alphabet[Math.floor(next() * alphabet.length)]!;
      const op = next();
      text = op < 0.4 ? text.slice(0, at) + c + text.slice(at + 1) : op < 0.7 ? text.slice(0, at) + c + text.slice(at) : text.slice(0, at) + text.slice(at + 1 + Math.floor(next() * 40));
    }
    try {
      interpretVg(parseLvmConfig(text));
    } catch (error) {
      if (!isCofferError(error, 'E_FS_CORRUPT')) assert.fail(`seed ${seed}, run ${runs}: ${error instanceof Error ? error.stack : String(error)}`);
    }
  }
});
