import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBootSector } from './boot-sector.js';

interface Bpb {
  bytesPerSector?: number;
  sectorsPerCluster?: number;
  reserved?: number;
  fats?: number;
  rootEntries?: number;
  totalSectors: number;
  fatSectors: number;
  fat32?: boolean;
  version?: number;
}

/** A boot sector with the given BPB (the fields a formatter writes, nothing else). */
function bootSector(b: Bpb): Uint8Array {
  const s = Buffer.alloc(512);
  s.set([0xeb, 0x3c, 0x90], 0);
  s.writeUInt16LE(b.bytesPerSector ?? 512, 11);
  s.writeUInt8(b.sectorsPerCluster ?? 1, 13);
  s.writeUInt16LE(b.reserved ?? (b.fat32 ? 32 : 1), 14);
  s.writeUInt8(b.fats ?? 2, 16);
  s.writeUInt16LE(b.fat32 ? 0 : b.rootEntries ?? 512, 17);
  s.writeUInt8(0xf8, 21);
  if (b.totalSectors < 0x10000) s.writeUInt16LE(b.totalSectors, 19);
  else s.writeUInt32LE(b.totalSectors, 32);
  if (b.fat32) {
    s.writeUInt32LE(b.fatSectors, 36);
    s.writeUInt16LE(b.version ?? 0, 42);
    s.writeUInt32LE(2, 44);
    s.writeUInt8(0x29, 66);
    s.writeUInt32LE(0x1234abcd, 67);
    s.write('NO NAME    FAT32   ', 71, 'latin1');
  } else {
    s.writeUInt16LE(b.fatSectors, 22);
    s.writeUInt8(0x29, 38);
    s.writeUInt32LE(0xdeadbeef, 39);
    s.write('MY DISK    FAT16   ', 43, 'latin1');
  }
  s.set([0x55, 0xaa], 510);
  return s;
}

/** Total sectors giving exactly `clusters` clusters with 1-sector clusters, FAT12/16 layout. */
const fat16Layout = (clusters: number, fatSectors: number): Bpb => ({ totalSectors: 1 + 2 * fatSectors + 32 + clusters, fatSectors });

test('the type follows the spec thresholds on the cluster count', () => {
  const cases: [Bpb, string, number][] = [
    [fat16Layout(4084, 12), 'fat12', 4084],
    [fat16Layout(4085, 16), 'fat16', 4085],
    [fat16Layout(65524, 256), 'fat16', 65524],
    [{ totalSectors: 32 + 2 * 600 + 65525, fatSectors: 600, fat32: true }, 'fat32', 65525],
  ];
  for (const [bpb, kind, clusters] of cases) {
    const g = parseBootSector(bootSector(bpb), 1 << 30);
    assert.equal(g.kind, kind);
    assert.equal(g.clusterCount, clusters);
  }
});

test('geometry: offsets of the FAT, the root directory and cluster 2; serial and label', () => {
  const g = parseBootSector(bootSector({ totalSectors: 409600, fatSectors: 200, sectorsPerCluster: 8 }), 409600 * 512);
  assert.deepEqual(
    [g.kind, g.clusterSize, g.fatOffset, g.fatBytes, g.rootDirOffset, g.rootDirBytes, g.dataOffset, g.clusterCount, g.serial],
    ['fat16', 4096, 512, 102400, 512 + 2 * 102400, 16384, 512 + 2 * 102400 + 16384, 51145, 'DEAD-BEEF'],
  );
  assert.equal(Buffer.from(g.bpbLabel).toString('latin1'), 'MY DISK');
  const f32 = parseBootSector(bootSector({ totalSectors: 32 + 2 * 600 + 70000, fatSectors: 600, fat32: true }), 1 << 30);
  assert.deepEqual([f32.rootCluster, f32.rootDirBytes, f32.serial, f32.bpbLabel.length], [2, 0, '1234-ABCD', 0]);
});

test('inconsistent boot sectors are E_FS_CORRUPT; a FAT32 of another version is E_FS_UNSUPPORTED', () => {
  const good = fat16Layout(50000, 200);
  const broken: [string, Uint8Array, number?][] = [
    ['no jump', Object.assign(bootSector(good), { 0: 0 })],
    ['no signature', Object.assign(bootSector(good), { 510: 0 })],
    ['sector size', bootSector({ ...good, bytesPerSector: 768 })],
    ['cluster size', bootSector({ ...good, sectorsPerCluster: 3 })],
    ['no FAT', bootSector({ ...good, fats: 0 })],
    ['FAT too small', bootSector({ ...good, fatSectors: 20 })],
    ['beyond the device', bootSector(good), 1 << 20],
    ['FAT32 layout, FAT16 count', bootSector({ totalSectors: 32 + 2 * 200 + 50000, fatSectors: 200, fat32: true })],
    ['FAT16 count, no root', bootSector({ ...good, rootEntries: 0 })],
  ];
  for (const [what, sector, size] of broken) {
    assert.throws(() => parseBootSector(sector, size ?? 1 << 30), { code: 'E_FS_CORRUPT' }, what);
  }
  const v1 = bootSector({ totalSectors: 32 + 2 * 600 + 70000, fatSectors: 600, fat32: true, version: 0x0100 });
  assert.throws(() => parseBootSector(v1, 1 << 30), { code: 'E_FS_UNSUPPORTED', message: /version 1\.0/ });
});
