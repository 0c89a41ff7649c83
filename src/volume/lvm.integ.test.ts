/**
 * LVM2 volumes on real PVs (written by pvcreate/vgcreate/lvcreate through loop devices),
 * checked against the `lvs`/`pvs`/`vgs` JSON reports LVM gave when the fixtures were built:
 * names, UUIDs, sizes, and the bytes of each LV read where LVM says its extents lie.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { RawImage } from '../disk/index.js';
import { isCofferError } from '../errors/index.js';
import {
  buildLvmOneDisk,
  buildLvmTwoDisks,
  bytes,
  deriveDisk,
  lvPlacement,
  requireTools,
  runTool,
  seededBytes,
  type LvmOracle,
} from '../testing/index.js';
import { listVolumes, volumeRangesOnDisk, type Volume } from './index.js';

const MiB = 1024 * 1024;

before(() => requireTools('sfdisk', 'mke2fs', 'debugfs', 'losetup', 'pvcreate', 'vgcreate', 'lvcreate', 'lvs', 'vgcfgrestore'));

async function withVolumes<T>(paths: string[], fn: (volumes: Volume[], disks: RawImage[]) => Promise<T>): Promise<T> {
  const disks = await Promise.all(paths.map((p) => RawImage.open(p)));
  try {
    return await fn(await listVolumes(disks), disks);
  } finally {
    await Promise.all(disks.map((d) => d.close()));
  }
}

const lvSizes = (oracle: LvmOracle): Map<string, number> =>
  new Map(oracle.lvs.map((r) => [`${r['vg_name']}/${r['lv_name']}`, bytes(r['lv_size'])]));

/**
 * The bytes LVM's report says an LV holds: for each segment, its PV ranges (`disk0:8-15
 * disk1:0-7`), striped round-robin by `stripe_size`, read from `pvBytes` (PV name → bytes).
 */
function expectedLvBytes(oracle: LvmOracle, lv: string, pvBytes: Map<string, Buffer>): Buffer {
  const rows = oracle.lvs.filter((r) => r['lv_name'] === lv).sort((a, b) => bytes(a['seg_start']) - bytes(b['seg_start']));
  const extent = bytes(oracle.vgs.find((v) => v['vg_name'] === rows[0]?.['vg_name'])?.['vg_extent_size']);
  const pieces: Buffer[] = [];
  for (const row of rows) {
    const areas = (row['seg_pe_ranges'] ?? '').split(' ').map((range) => {
      const [, pv, first] = /^(.+):(\d+)-(\d+)$/.exec(range) ?? [];
      const peStart = bytes(oracle.pvs.find((p) => p['pv_name'] === pv)?.['pe_start']);
      return pvBytes.get(pv!)!.subarray(peStart + Number(first) * extent);
    });
    const size = bytes(row['seg_size']);
    const chunk = areas.length > 1 ? bytes(row['stripe_size']) : size;
    for (let at = 0, c = 0; at < size; at += chunk, c++) {
      const area = areas[c % areas.length]!;
      const row0 = Math.floor(c / areas.length) * chunk;
      pieces.push(area.subarray(row0, row0 + Math.min(chunk, size - at)));
    }
  }
  return Buffer.concat(pieces);
}

test('one disk: the PV in a GPT partition, its VG and LVs as lvs/pvs report them', async () => {
  const { disks, oracle } = await buildLvmOneDisk();
  await withVolumes(disks, async (volumes) => {
    assert.deepEqual(volumes.map((v) => v.name), ['p1', 'p2', 'coffer-one/root', 'coffer-one/home', 'coffer-one/snap']);
    const pv = volumes.find((v) => v.name === 'p2')!;
    assert.deepEqual(pv.lvmPhysicalVolume, { vg: 'coffer-one', uuid: oracle.pvs[0]!['pv_uuid'] });
    assert.equal(volumes.find((v) => v.name === 'p1')!.lvmPhysicalVolume, undefined);
    const sizes = lvSizes(oracle);
    for (const lv of volumes.filter((v) => v.kind === 'logical-volume')) {
      const row = oracle.lvs.find((r) => `${r['vg_name']}/${r['lv_name']}` === lv.name)!;
      assert.deepEqual([lv.size, lv.uuid, lv.label, lv.disk, lv.offset], [sizes.get(lv.name), row['lv_uuid'], row['lv_name'], 0, undefined]);
    }
  });
});

test('one disk: root and home read the bytes at pe_start + extent × extent_size; the ext4 in root is whole', async () => {
  const { disks, oracle } = await buildLvmOneDisk();
  await withVolumes(disks, async (volumes, [disk]) => {
    const p2 = volumes.find((v) => v.name === 'p2')!;
    for (const name of ['root', 'home']) {
      const lv = volumes.find((v) => v.name === `coffer-one/${name}`)!;
      const place = lvPlacement(oracle, name);
      assert.equal(lv.size, place.size);
      assert.deepEqual(Buffer.from(await lv.device.read(0, lv.size)), Buffer.from(await disk!.read(p2.offset! + place.at, place.size)), name);
    }
    const home = volumes.find((v) => v.name === 'coffer-one/home')!;
    assert.ok(Buffer.from(await home.device.read(0, MiB)).equals(seededBytes(21, MiB)));
    assert.ok(Buffer.from(await home.device.read(home.size - MiB, MiB)).equals(seededBytes(22, MiB)));
    const root = volumes.find((v) => v.name === 'coffer-one/root')!;
    const superblock = Buffer.from(await root.device.read(1024, 1024));
    assert.equal(superblock.readUInt16LE(56), 0xef53);
    // debugfs, reading the disk at the offset LVM's report gives, agrees that this is the filesystem
    const stats = await runTool('debugfs', ['-R', 'stats', `${disks[0]}?offset=${p2.offset! + lvPlacement(oracle, 'root').at}`]);
    assert.match(stats, /Filesystem volume name:\s+lv-root/);
    assert.equal(superblock.toString('latin1', 120, 127), 'lv-root');
  });
});

test('one disk: the LV extent map passes the disk\'s holes through, and its zero ranges read as zeros', async () => {
  const { disks } = await buildLvmOneDisk();
  await withVolumes(disks, async (volumes) => {
    const root = volumes.find((v) => v.name === 'coffer-one/root')!;
    let next = 0;
    let zeros = 0;
    for await (const e of root.device.extents()) {
      assert.equal(e.offset, next);
      next += e.length;
      if (e.kind === 'zero') {
        zeros += e.length;
        const n = Math.min(e.length, MiB);
        assert.ok((await root.device.read(e.offset, n)).every((b) => b === 0));
      }
    }
    assert.equal(next, root.size);
    assert.ok(zeros > root.size / 2, `an empty ext4 is mostly holes, map says ${zeros} zero bytes`);
  });
});

test('one disk: a snapshot is listed with a warning, and reading it throws E_FS_UNSUPPORTED', async () => {
  const { disks, oracle } = await buildLvmOneDisk();
  assert.equal(oracle.lvs.find((r) => r['lv_name'] === 'snap')?.['origin'], 'root');
  await withVolumes(disks, async (volumes) => {
    const snap = volumes.find((v) => v.name === 'coffer-one/snap')!;
    assert.equal(snap.typeDescription, 'LVM snapshot');
    assert.match(snap.warnings?.join() ?? '', /snapshot of coffer-one\/root/);
    await assert.rejects(snap.device.read(0, 512), (e) => isCofferError(e, 'E_FS_UNSUPPORTED'));
  });
});

test('two disks: a striped LV (2 × 64 KiB stripes) and a linear LV spanning both PVs read as LVM maps them', async () => {
  const { disks, oracle } = await buildLvmTwoDisks();
  const pvBytes = new Map<string, Buffer>();
  await withVolumes(disks, async (volumes, raw) => {
    for (const [i, disk] of raw.entries()) pvBytes.set(`disk${i}`, Buffer.from(await disk.read(0, disk.size)));
    assert.deepEqual(volumes.map((v) => [v.name, v.kind, v.disk, v.lvmPhysicalVolume?.uuid]), [
      ['disk', 'whole-disk', 0, oracle.pvs[0]!['pv_uuid']],
      ['disk', 'whole-disk', 1, oracle.pvs[1]!['pv_uuid']],
      ['coffer-two/striped', 'logical-volume', 0, undefined],
      ['coffer-two/span', 'logical-volume', 0, undefined],
    ]);
    const sizes = lvSizes(oracle);
    for (const name of ['striped', 'span']) {
      const lv = volumes.find((v) => v.name === `coffer-two/${name}`)!;
      assert.equal(lv.size, sizes.get(lv.name));
      assert.equal(lv.warnings, undefined);
      const expected = expectedLvBytes(oracle, name, pvBytes);
      assert.equal(expected.length, lv.size);
      assert.ok(Buffer.from(await lv.device.read(0, lv.size)).equals(expected), `${name}: whole read`);
      // reads that straddle stripe chunks and the segment boundary between the disks
      for (const [offset, length] of [[65536 - 100, 300], [40894464 - 4096, 8192], [1, 200_000], [lv.size - 70_000, 70_000]] as const) {
        if (offset + length > lv.size) continue;
        const into = new Uint8Array(length + 10);
        const got = await lv.device.read(offset, length, into);
        assert.ok(Buffer.from(got).equals(expected.subarray(offset, offset + length)), `${name}: ${length} bytes at ${offset}`);
      }
    }
  });
});

test('two disks, one missing: the VG\'s LVs are listed with a warning; the missing PV\'s bytes throw a clear error', async () => {
  const { disks, oracle } = await buildLvmTwoDisks();
  const missing = oracle.pvs[1]!['pv_uuid']!;
  await withVolumes([disks[0]!], async (volumes) => {
    assert.deepEqual(volumes.map((v) => v.name), ['disk', 'coffer-two/striped', 'coffer-two/span']);
    for (const lv of volumes.slice(1)) assert.match(lv.warnings?.join() ?? '', new RegExp(`physical volume ${missing} .*none of the disks`));
    const span = volumes.find((v) => v.name === 'coffer-two/span')!;
    const firstSegment = bytes(oracle.lvs.find((r) => r['lv_name'] === 'span' && r['seg_start'] === '0B')?.['seg_size']);
    await span.device.read(0, 4096);
    await assert.rejects(span.device.read(firstSegment - 512, 1024), (e) => isCofferError(e, 'E_SOURCE_UNREADABLE') && e.message.includes(missing));
    const striped = volumes.find((v) => v.name === 'coffer-two/striped')!;
    await striped.device.read(0, 65536); // the first chunk lies on disk 0
    await assert.rejects(striped.device.read(65536, 512), (e) => isCofferError(e, 'E_SOURCE_UNREADABLE'));
  });
});

test('LVM metadata garbage: a PV whose metadata text is damaged gets a warning; the other copy still gives the VG', async () => {
  const { disks } = await buildLvmTwoDisks();
  // The metadata area starts at 4 KiB (after the label); its text ring follows its 512-byte header.
  const garbage = { offset: 4096 + 512, bytes: 60 * 1024, seed: 99 };
  const damaged = await deriveDisk(disks[0]!, 'volume-lvm-two-garbage', [garbage]);
  await withVolumes([damaged, disks[1]!], async (volumes) => {
    assert.deepEqual(volumes.map((v) => v.name), ['disk', 'disk', 'coffer-two/striped', 'coffer-two/span']);
    assert.match(volumes[0]!.warnings?.join() ?? '', /LVM metadata unreadable: lvm: metadata text checksum mismatch/);
    assert.equal(volumes[0]!.lvmPhysicalVolume?.vg, 'coffer-two'); // still known from disk 1's copy
  });
  const bothDamaged = await deriveDisk(disks[1]!, 'volume-lvm-two-garbage-1', [garbage]);
  await withVolumes([damaged, bothDamaged], async (volumes) => {
    assert.deepEqual(volumes.map((v) => [v.name, v.lvmPhysicalVolume?.vg]), [['disk', ''], ['disk', '']]);
    assert.ok(volumes.every((v) => /metadata text checksum mismatch/.test(v.warnings?.join() ?? '')));
  });
});

test('disk ranges map back to LV ranges through linear and striped segments, across disks and inside a partition', async () => {
  const check = async (paths: string[], names: string[]): Promise<void> => {
    await withVolumes(paths, async (volumes, raw) => {
      for (const name of names) {
        const lv = volumes.find((v) => v.name === name)!;
        const covered: { volumeOffset: number; length: number }[] = [];
        for (const [index, disk] of raw.entries()) {
          const pieces = volumeRangesOnDisk(lv, index, { offset: 0, length: disk.size });
          for (const p of pieces) {
            // Each piece's bytes on the disk are the LV's bytes at the offset it names (the PV data is seeded, so no two places agree by chance).
            assert.ok(Buffer.from(await disk.read(p.diskOffset, p.length)).equals(Buffer.from(await lv.device.read(p.volumeOffset, p.length))), `${name}: disk ${index} at ${p.diskOffset}`);
            covered.push(p);
          }
          // A range that straddles pieces is cut at the same places.
          const middle = pieces[Math.floor(pieces.length / 2)];
          if (middle !== undefined) {
            const sub = volumeRangesOnDisk(lv, index, { offset: middle.diskOffset - 1000, length: 2000 });
            assert.equal(sub.reduce((sum, p) => sum + p.length, 0), pieces.some((p) => p.diskOffset + p.length === middle.diskOffset) ? 2000 : 1000, `${name}: a 2000-byte range`);
          }
        }
        covered.sort((a, b) => a.volumeOffset - b.volumeOffset);
        let next = 0;
        for (const p of covered) {
          assert.equal(p.volumeOffset, next, `${name}: the pieces cover the LV once`);
          next += p.length;
        }
        assert.equal(next, lv.size, `${name}: all of it`);
      }
      const p1 = volumes.find((v) => v.kind === 'partition');
      if (p1 !== undefined) assert.deepEqual(volumeRangesOnDisk(p1, 0, { offset: p1.offset! - 10, length: 20 }), [{ volumeOffset: 0, diskOffset: p1.offset!, length: 10 }]);
    });
  };
  const one = await buildLvmOneDisk();
  await check(one.disks, ['coffer-one/root', 'coffer-one/home']);
  const two = await buildLvmTwoDisks();
  await check(two.disks, ['coffer-two/striped', 'coffer-two/span']);
});
