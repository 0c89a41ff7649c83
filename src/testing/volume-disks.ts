/**
 * Real disks for the volume tests (partition tables, LVM2, LUKS), made by the real tools and
 * cached like every fixture ({@link cachedFixture}):
 * - sfdisk writes GPT and MBR tables (with an extended partition and logical partitions);
 * - mke2fs and mformat put a filesystem on a whole disk (no partition table);
 * - cryptsetup writes LUKS1 and LUKS2 headers into partition files (no device-mapper needed);
 * - LVM writes real PV labels and VG metadata through loop devices (`losetup`); logical volumes
 *   are never activated (no device-mapper here), their bytes are written at the offsets that
 *   `lvs`/`pvs` report, and the JSON reports of `lvs`/`pvs`/`vgs` are stored next to the
 *   images so tests compare against LVM without running it again.
 *
 * LVM builds are serialized across processes by a lock folder (VG names are global to the
 * machine while their loop devices are attached), every LVM command sees only the loop
 * devices of its fixture (`--devices`), writes no archive into /etc/lvm, and every loop
 * device is detached in a `finally`, also when a step fails.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { cachedFixture, fixtureDir, runTool, seededBytes } from './disks.js';

const MiB = 1024 * 1024;
/** Part of every cache key here: bump it when a recipe below changes. */
const VOLUME_RECIPE = 1;

/** GPT type GUIDs the fixtures use (as sfdisk takes them). */
export const GPT_TYPES = {
  efi: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  biosBoot: '21686148-6449-6E6F-744E-656564454649',
  linux: '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
  swap: '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F',
  basicData: 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7',
  msReserved: 'E3C9E316-0B5C-4DB8-817D-F92DF00215AE',
  winRecovery: 'DE94BBA4-06D1-4D40-A16A-BFD50179D6AC',
  lvm: 'E6D6D379-F507-44C2-A23C-238F2A3DF928',
} as const;

/** A deterministic UUID for a fixture's object (partition GUIDs, filesystem and LUKS UUIDs). */
export function fixtureUuid(purpose: string): string {
  return createHash('sha256').update(`coffer-volume-fixture:${purpose}`).digest('hex').slice(0, 32)
    .replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
}

/** The partitions of {@link buildGptVolumesDisk}, in table order (p1 first). Sizes in MiB. */
export const GPT_DISK_PARTITIONS = [
  { name: 'EFI system partition', type: GPT_TYPES.efi, mib: 8 },
  { name: 'bios', type: GPT_TYPES.biosBoot, mib: 1 },
  { name: 'root fs', type: GPT_TYPES.linux, mib: 8 },
  { name: 'swap', type: GPT_TYPES.swap, mib: 4 },
  { name: 'Données ☕', type: GPT_TYPES.basicData, mib: 8 },
  { name: 'Microsoft reserved partition', type: GPT_TYPES.msReserved, mib: 1 },
  { name: 'recovery', type: GPT_TYPES.winRecovery, mib: 4 },
  { name: 'lvm-without-pv', type: GPT_TYPES.lvm, mib: 4 },
  { name: 'luks2', type: GPT_TYPES.linux, mib: 8 },
  { name: 'luks1', type: GPT_TYPES.linux, mib: 4 },
  { name: 'bitlocker', type: GPT_TYPES.basicData, mib: 4 },
] as const;

/**
 * A 64 MiB GPT disk with the eleven partitions of {@link GPT_DISK_PARTITIONS} (1 MiB aligned
 * from 1 MiB): names with non-ASCII characters, the common type GUIDs, a LUKS2 container in
 * p9 and a LUKS1 container in p10 (cryptsetup), and in p11 a BitLocker boot sector written by
 * hand (no Linux tool writes one: the `-FVE-FS-` OEM id, a jump and the 55 AA signature).
 */
export async function buildGptVolumesDisk(): Promise<string> {
  return cachedFixture('volume-gpt', { VOLUME_RECIPE, GPT_DISK_PARTITIONS }, async (tmp) => {
    await newSparseFile(tmp, 64 * MiB);
    let start = 2048;
    const lines = ['label: gpt', `label-id: ${fixtureUuid('gpt-disk')}`];
    const starts: number[] = [];
    GPT_DISK_PARTITIONS.forEach((p, i) => {
      starts.push(start);
      lines.push(`start=${start}, size=${p.mib * 2048}, type=${p.type}, uuid=${fixtureUuid(`gpt-part-${i + 1}`)}, name="${p.name}"`);
      start += p.mib * 2048;
    });
    await runTool('sfdisk', ['-q', tmp], `${lines.join('\n')}\n`);
    const partitionFile = `${tmp}.part`;
    try {
      for (const [index, type] of [[8, 'luks2'], [9, 'luks1']] as const) {
        await newSparseFile(partitionFile, GPT_DISK_PARTITIONS[index].mib * MiB);
        await writeLuks(partitionFile, type, fixtureUuid(`gpt-${type}`));
        await copyFileInto(partitionFile, tmp, starts[index]! * 512);
      }
    } finally {
      await fs.rm(partitionFile, { force: true });
      await fs.rm(`${partitionFile}.key`, { force: true });
    }
    await writeAt(tmp, starts[10]! * 512, bitLockerBootSector());
  });
}

/**
 * A 64 MiB MBR disk: p1 Linux (0x83, 8 MiB at 1 MiB), p2 NTFS/exFAT (0x07, 8 MiB), p3 an
 * extended partition (0x05) over the rest, holding logical partitions p5 (0x83, 8 MiB),
 * p6 (0x82 swap, 8 MiB) and p7 (0x8e Linux LVM, the rest), each behind its own EBR.
 */
export async function buildMbrVolumesDisk(): Promise<string> {
  return cachedFixture('volume-mbr', { VOLUME_RECIPE }, async (tmp) => {
    await newSparseFile(tmp, 64 * MiB);
    await runTool('sfdisk', ['-q', tmp], [
      'label: dos',
      'label-id: 0x1234abcd',
      'start=2048, size=16384, type=83',
      'size=16384, type=7',
      'type=5',
      'size=16384, type=83',
      'size=16384, type=82',
      'type=8e',
      '',
    ].join('\n'));
  });
}

/**
 * A 32 MiB GPT disk with 4096-byte sectors (written by sfdisk through a loop device with
 * `losetup -b 4096`): p1 "four k" (Linux filesystem) at 1 MiB, 8 MiB; p2 (Linux swap) at
 * 9 MiB, 4 MiB. Its header is at byte 4096, its LBAs count 4 KiB sectors.
 */
export async function buildGpt4kDisk(): Promise<string> {
  return cachedFixture('volume-gpt-4k', { VOLUME_RECIPE }, async (tmp) => {
    await newSparseFile(tmp, 32 * MiB);
    const loop = (await runTool('losetup', ['-f', '--show', '-b', '4096', tmp])).trim();
    try {
      await runTool('sfdisk', ['-q', loop], [
        'label: gpt', `label-id: ${fixtureUuid('gpt-4k')}`,
        `start=256, size=2048, type=${GPT_TYPES.linux}, uuid=${fixtureUuid('gpt-4k-p1')}, name="four k"`,
        `start=2304, size=1024, type=${GPT_TYPES.swap}, uuid=${fixtureUuid('gpt-4k-p2')}`, '',
      ].join('\n'));
    } finally {
      await runTool('losetup', ['-d', loop]);
    }
  });
}

/** A 16 MiB ext4 filesystem over the whole disk (no partition table), by mke2fs. */
export async function buildWholeDiskExt4(): Promise<string> {
  return cachedFixture('volume-whole-ext4', { VOLUME_RECIPE }, async (tmp) => {
    await newSparseFile(tmp, 16 * MiB);
    await runTool('mke2fs', ['-q', '-F', '-t', 'ext4', '-U', fixtureUuid('whole-ext4'), '-L', 'whole',
      '-E', `nodiscard,hash_seed=${fixtureUuid('whole-ext4-hash')}`, tmp, '16384k']);
  });
}

/** A 16 MiB FAT16 filesystem over the whole disk (no partition table), by mformat. */
export async function buildWholeDiskFat(): Promise<string> {
  return cachedFixture('volume-whole-fat', { VOLUME_RECIPE }, async (tmp) => {
    await newSparseFile(tmp, 16 * MiB);
    await runTool('env', ['MTOOLS_SKIP_CHECK=1', 'mformat', '-i', tmp, '-T', String(32768), '-h', '64', '-s', '32',
      '-N', '12345678', '-v', 'WHOLEFAT', '::']);
  });
}

/** A 16 MiB NTFS filesystem over the whole disk (no partition table), by mkntfs. */
export async function buildWholeDiskNtfs(): Promise<string> {
  return cachedFixture('volume-whole-ntfs', { VOLUME_RECIPE }, async (tmp) => {
    await newSparseFile(tmp, 16 * MiB);
    await runTool('mkntfs', ['-F', '-Q', '-q', '-s', '512', '-L', 'WHOLENTFS', tmp]);
  });
}

/** The JSON reports LVM gave when a fixture was built, loop devices renamed `diskN` / `diskNpM`. */
export interface LvmOracle {
  lvs: LvmReportRow[];
  pvs: LvmReportRow[];
  vgs: LvmReportRow[];
}
/** One row of an `lvs`/`pvs`/`vgs --reportformat json --units b` report (sizes as `"1048576B"`). */
export type LvmReportRow = Record<string, string>;

/** An LVM fixture: its disk images (VM disk order) and what LVM said about them. */
export interface LvmFixture {
  disks: string[];
  oracle: LvmOracle;
}

/**
 * One 64 MiB GPT disk: p1 (8 MiB, Linux filesystem) and p2 (Linux LVM, the rest) holding a PV
 * of VG `coffer-one` (4 MiB extents) with LVs `root` (16 MiB, an ext4 made by mke2fs at the
 * LV's place on the disk) and `home` (12 MiB, `seededBytes(21)` in its first and last MiB),
 * and `snap`, a snapshot of `root` (its COW 4 MiB, written by vgcfgrestore since lvcreate
 * cannot make snapshots without device-mapper).
 */
export async function buildLvmOneDisk(): Promise<LvmFixture> {
  return buildLvmFixture('volume-lvm-one', 1, async (tmp, lvm) => {
    await newSparseFile(tmp[0]!, 64 * MiB);
    await runTool('sfdisk', ['-q', tmp[0]!], [
      'label: gpt', `label-id: ${fixtureUuid('lvm-one-disk')}`,
      `start=2048, size=16384, type=${GPT_TYPES.linux}, uuid=${fixtureUuid('lvm-one-p1')}, name="boot"`,
      `start=18432, type=${GPT_TYPES.lvm}, uuid=${fixtureUuid('lvm-one-p2')}, name="lvm"`, '',
    ].join('\n'));
    const table = JSON.parse(await runTool('sfdisk', ['-J', tmp[0]!])) as { partitiontable: { partitions: { start: number; size: number }[] } };
    const p2 = table.partitiontable.partitions[1]!;
    const pv = await lvm.attach(tmp[0]!, 'disk0p2', p2.start * 512, p2.size * 512);
    await lvm.run('pvcreate', ['-q', pv]);
    await lvm.run('vgcreate', ['-q', '-s', '4m', 'coffer-one', pv]);
    await lvm.run('lvcreate', ['--driverloaded', 'n', '-an', '-Zn', '-L', '16m', '-n', 'root', 'coffer-one']);
    await lvm.run('lvcreate', ['--driverloaded', 'n', '-an', '-Zn', '-L', '12m', '-n', 'home', 'coffer-one']);
    await addSnapshot(lvm, 'coffer-one', 'root', 'snap', 'pv0', 7);
    const oracle = await lvm.report();
    const root = lvPlacement(oracle, 'root');
    const home = lvPlacement(oracle, 'home');
    await runTool('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'lv-root', '-U', fixtureUuid('lvm-one-root'),
      '-E', `offset=${p2.start * 512 + root.at},nodiscard,hash_seed=${fixtureUuid('lvm-one-hash')}`, tmp[0]!, `${root.size / 1024}k`]);
    await writeAt(tmp[0]!, p2.start * 512 + home.at, seededBytes(21, MiB));
    await writeAt(tmp[0]!, p2.start * 512 + home.at + home.size - MiB, seededBytes(22, MiB));
    return oracle;
  });
}

/**
 * Two 48 MiB disks, each a whole-disk PV (no partition table) of VG `coffer-two` (1 MiB
 * extents): LV `striped` (16 MiB, 2 stripes of 64 KiB, one on each disk) and LV `span`
 * (60 MiB, linear, on both disks). The data area of each PV is filled with `seededBytes`
 * (seed 31 for disk 0, 32 for disk 1), so any LV's bytes are known from the LVM report.
 */
export async function buildLvmTwoDisks(): Promise<LvmFixture> {
  return buildLvmFixture('volume-lvm-two', 2, async (tmp, lvm) => {
    const pvs: string[] = [];
    for (const [i, file] of tmp.entries()) {
      await newSparseFile(file, 48 * MiB);
      pvs.push(await lvm.attach(file, `disk${i}`, 0, 48 * MiB));
    }
    await lvm.run('pvcreate', ['-q', ...pvs]);
    await lvm.run('vgcreate', ['-q', '-s', '1m', 'coffer-two', ...pvs]);
    await lvm.run('lvcreate', ['--driverloaded', 'n', '-an', '-Zn', '-i', '2', '-I', '64k', '-L', '16m', '-n', 'striped', 'coffer-two']);
    await lvm.run('lvcreate', ['--driverloaded', 'n', '-an', '-Zn', '-L', '60m', '-n', 'span', 'coffer-two']);
    const oracle = await lvm.report();
    for (const [i, file] of tmp.entries()) {
      const row = oracle.pvs.find((r) => r['pv_name'] === `disk${i}`);
      const peStart = bytes(row?.['pe_start']);
      await writeAt(file, peStart, seededBytes(31 + i, 48 * MiB - peStart));
    }
    return oracle;
  });
}

/** Where an LV with one linear segment lies in its PV: byte offset and size. */
export function lvPlacement(oracle: LvmOracle, lv: string): { at: number; size: number; pv: string } {
  const row = oracle.lvs.find((r) => r['lv_name'] === lv);
  const pv = oracle.pvs.find((r) => r['pv_name'] === /^([^:]+):/.exec(row?.['seg_pe_ranges'] ?? '')?.[1]);
  const vg = oracle.vgs.find((r) => r['vg_name'] === row?.['vg_name']);
  const first = Number(/:(\d+)-/.exec(row?.['seg_pe_ranges'] ?? '')?.[1]);
  if (row === undefined || pv === undefined || vg === undefined || !Number.isInteger(first)) throw new Error(`no linear LV ${lv} in the report`);
  return { at: bytes(pv['pe_start']) + first * bytes(vg['vg_extent_size']), size: bytes(row['seg_size']), pv: pv['pv_name']! };
}

/** `"1048576B"` → 1048576. */
export function bytes(value: string | undefined): number {
  const n = Number(/^(\d+)B$/.exec(value ?? '')?.[1]);
  if (!Number.isSafeInteger(n)) throw new Error(`not a byte count: ${value}`);
  return n;
}

/** What an LVM fixture recipe gets: LVM commands limited to its loop devices. */
interface LvmSession {
  /** Attaches `[offset, offset + size)` of `file` to a loop device, known in reports as `alias`. */
  attach(file: string, alias: string, offset: number, size: number): Promise<string>;
  run(tool: string, args: string[], input?: string): Promise<string>;
  report(): Promise<LvmOracle>;
}

async function buildLvmFixture(name: string, diskCount: number, recipe: (tmp: string[], lvm: LvmSession) => Promise<LvmOracle>): Promise<LvmFixture> {
  const dir = await fixtureDir();
  const key = createHash('sha256').update(JSON.stringify({ VOLUME_RECIPE, name, diskCount, recipe: recipe.toString() })).digest('hex').slice(0, 12);
  const disks = Array.from({ length: diskCount }, (_, i) => path.join(dir, `${name}-${key}-disk${i}.img`));
  const oracleFile = path.join(dir, `${name}-${key}-lvm.json`);
  const load = async (): Promise<LvmFixture> => ({ disks, oracle: JSON.parse(await fs.readFile(oracleFile, 'utf8')) as LvmOracle });
  if (await exists(oracleFile)) return load();
  return withLock(path.join(dir, '.lvm-build.lock'), async () => {
    if (await exists(oracleFile)) return load(); // another process built it while we waited
    const tmp = disks.map((d) => `${d}.${process.pid}.tmp`);
    const loops: { device: string; alias: string }[] = [];
    const devicesArgs = (): string[] => ['--devices', loops.map((l) => l.device).join(','), '--config', 'backup { backup = 0 archive = 0 }'];
    const session: LvmSession = {
      async attach(file, alias, offset, size) {
        const device = (await runTool('losetup', ['-f', '--show', '-o', String(offset), '--sizelimit', String(size), file])).trim();
        loops.push({ device, alias });
        return device;
      },
      run: (tool, args, input) => runTool(tool, [...devicesArgs(), ...args], input),
      async report() {
        const units = ['--reportformat', 'json', '--units', 'b'];
        const get = async (tool: string, fields: string, kind: string): Promise<LvmReportRow[]> => {
          let text = await runTool(tool, [...devicesArgs(), ...units, '-o', fields]);
          for (const { device, alias } of loops) text = text.replaceAll(`${device}:`, `${alias}:`).replaceAll(`${device}(`, `${alias}(`).replaceAll(`"${device}"`, `"${alias}"`);
          const parsed = JSON.parse(text) as { report: Record<string, LvmReportRow[]>[] };
          return parsed.report[0]?.[kind] ?? [];
        };
        return {
          lvs: await get('lvs', 'lv_name,lv_uuid,vg_name,lv_size,segtype,seg_start,seg_size,seg_pe_ranges,stripes,stripe_size,origin,lv_attr', 'lv'),
          pvs: await get('pvs', 'pv_name,pv_uuid,vg_name,pe_start,pv_size,dev_size', 'pv'),
          vgs: await get('vgs', 'vg_name,vg_uuid,vg_extent_size,pv_count,lv_count', 'vg'),
        };
      },
    };
    try {
      const oracle = await recipe(tmp, session);
      for (const [i, file] of tmp.entries()) await fs.rename(file, disks[i]!);
      await fs.writeFile(`${oracleFile}.tmp`, `${JSON.stringify(oracle, null, 1)}\n`);
      await fs.rename(`${oracleFile}.tmp`, oracleFile);
      return load();
    } finally {
      for (const { device } of loops.reverse()) await runTool('losetup', ['-d', device]).catch(() => {});
      for (const file of tmp) await fs.rm(file, { force: true });
    }
  });
}

/**
 * Adds a snapshot LV the way LVM records one: the COW LV `snap` (visible, linear on `pv` from
 * extent `firstExtent`, one extent) and a hidden `snapshot0` LV whose `snapshot` segment joins
 * origin and COW. Written with vgcfgbackup / vgcfgrestore.
 */
async function addSnapshot(lvm: LvmSession, vg: string, origin: string, snap: string, pv: string, firstExtent: number): Promise<void> {
  const file = path.join(await fixtureDir(), `.vgcfg-${process.pid}.txt`);
  try {
    await lvm.run('vgcfgbackup', ['-q', '-f', file, vg]);
    const text = await fs.readFile(file, 'utf8');
    const end = text.lastIndexOf('\n\t}\n');
    if (end < 0 || !/seqno = (\d+)/.test(text)) throw new Error('unexpected vgcfgbackup output');
    const lv = (lvName: string, status: string, segment: string): string =>
      `\n\t\t${lvName} {\n\t\t\tid = "${lvmId(`${vg}/${lvName}`)}"\n` +
      `\t\t\tstatus = [${status}]\n\t\t\tflags = []\n\t\t\tsegment_count = 1\n\t\t\tsegment1 {\n${segment}\t\t\t}\n\t\t}\n`;
    const cow = lv(snap, '"READ", "WRITE", "VISIBLE"',
      `\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = 1\n\t\t\t\ttype = "striped"\n\t\t\t\tstripe_count = 1\n\t\t\t\tstripes = [\n\t\t\t\t\t"${pv}", ${firstExtent}\n\t\t\t\t]\n`);
    const joint = lv('snapshot0', '"READ", "WRITE"',
      `\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = 4\n\t\t\t\ttype = "snapshot"\n\t\t\t\tchunk_size = 8\n\t\t\t\torigin = "${origin}"\n\t\t\t\tcow_store = "${snap}"\n`);
    const edited = (text.slice(0, end) + cow + joint + text.slice(end)).replace(/seqno = (\d+)/, (_, n: string) => `seqno = ${Number(n) + 1}`);
    await fs.writeFile(file, edited);
    await lvm.run('vgcfgrestore', ['-q', '--force', '-f', file, vg]);
  } finally {
    await fs.rm(file, { force: true });
  }
}

/** A deterministic LVM id: 32 characters grouped 6-4-4-4-4-4-6. */
function lvmId(purpose: string): string {
  return createHash('sha256').update(`coffer-lvm-id:${purpose}`).digest('hex').slice(0, 32)
    .replace(/^(.{6})(.{4})(.{4})(.{4})(.{4})(.{4})(.{6})$/, '$1-$2-$3-$4-$5-$6-$7');
}

/** Runs `fn` holding a lock folder; a lock whose owner process is gone is taken over. */
async function withLock<T>(lock: string, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      await fs.mkdir(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number(await fs.readFile(path.join(lock, 'pid'), 'utf8').catch(() => 'NaN'));
      if (Number.isInteger(owner) && !isAlive(owner)) await fs.rm(lock, { recursive: true, force: true });
      if (attempt > 1200) throw new Error(`${lock} held for over 2 minutes`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  try {
    await fs.writeFile(path.join(lock, 'pid'), String(process.pid));
    return await fn();
  } finally {
    await fs.rm(lock, { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function writeLuks(file: string, type: 'luks1' | 'luks2', uuid: string): Promise<void> {
  const keyFile = `${file}.key`;
  await fs.writeFile(keyFile, 'coffer test key, not a secret');
  const sizes = type === 'luks2' ? ['--luks2-metadata-size', '16k', '--luks2-keyslots-size', '1m'] : [];
  await runTool('cryptsetup', ['luksFormat', '-q', '--type', type, '--key-file', keyFile, '--uuid', uuid,
    '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', ...sizes, file]);
}

/** A boot sector as BitLocker writes one, reduced to what identifies it. */
function bitLockerBootSector(): Buffer {
  const sector = Buffer.alloc(512);
  sector.set([0xeb, 0x58, 0x90], 0);
  sector.write('-FVE-FS-', 3, 'latin1');
  sector.writeUInt16LE(512, 11);
  sector.writeUInt16LE(0xaa55, 510);
  return sector;
}

async function newSparseFile(file: string, size: number): Promise<void> {
  await fs.writeFile(file, '');
  await fs.truncate(file, size);
}

async function copyFileInto(source: string, target: string, offset: number): Promise<void> {
  const handle = await fs.open(source, 'r');
  try {
    const buffer = Buffer.alloc(MiB);
    for (let at = 0; ; at += MiB) {
      const { bytesRead } = await handle.read(buffer, 0, MiB, at);
      if (bytesRead === 0) break;
      if (buffer.subarray(0, bytesRead).some((b) => b !== 0)) await writeAt(target, offset + at, buffer.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
}

async function writeAt(file: string, offset: number, data: Buffer): Promise<void> {
  const handle = await fs.open(file, 'r+');
  try {
    await handle.write(data, 0, data.length, offset);
  } finally {
    await handle.close();
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(() => true, () => false);
}
