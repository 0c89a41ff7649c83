/**
 * Restore of a snapshot whose chunks a prune repacked (issues #2/#6), in a minute or two: a
 * format 2 repository (`coffer init`), a disk of seeded random data (`BENCH_RAP_MIB`, default
 * 512) backed up three times (the full; then 30 % of its 256 KiB blocks rewritten at seeded
 * places; then 5 % more), the first snapshot forgotten and pruned, in this process by the
 * tests' repacked-repository fixture (src/testing/repacked-repository.ts; the prune's report
 * must say packs were repacked: the full's packs are 30 % unused), then the oldest
 * kept snapshot restored `BENCH_RAP_RUNS` times (default 5) by `coffer restore` under GNU
 * time (wall, CPU, peak RSS; medians printed) and once in this process through a backend that
 * counts every ranged read (all, failed, of removed packs). Each restore is compared with the
 * disk it was backed up from.
 *
 * Run: `node dist/bench/restore-after-prune.js` (`COFFER_BIN=/other/bin/coffer.js` to time
 * another build's CLI; `BENCH_KEEP=1` keeps `bench/work/run/restore-after-prune`,
 * `BENCH_REUSE=1` keeps it and reuses what a kept run prepared).
 *
 * @module
 */
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalBackend } from '../src/repo/backend/local-backend.js';
import { ForwardingBackend } from '../src/repo/backend/forwarding-backend.js';
import { listSnapshots, openRepository } from '../src/repo/index.js';
import { restoreSnapshot } from '../src/restore/index.js';
import { repackRepository } from '../src/testing/index.js';
import { run, timed, type Measurement } from './exec.js';
import { ByteStream, Prng } from './random.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cofferBin = process.env.COFFER_BIN ?? path.join(root, 'bin', 'coffer.js');
const work = path.join(root, 'bench', 'work', 'run', 'restore-after-prune');
const repoDir = path.join(work, 'repo');
const passphrase = 'bench-restore-after-prune';
const env = { COFFER_PASSWORD: passphrase };
const runs = Number(process.env.BENCH_RAP_RUNS ?? 5);
const mib = Number(process.env.BENCH_RAP_MIB ?? 512);
const BLOCK = 256 * 1024;

const coffer = (...args: string[]) => run(process.execPath, [cofferBin, ...args], { env });

/** A backend that counts ranged reads: all, failed, and those of packs in `removed`. */
class CountingBackend extends ForwardingBackend {
  ranges = 0;
  failed = 0;
  ofRemoved = 0;
  bytes = 0;
  constructor(
    inner: LocalBackend,
    private readonly removed: ReadonlySet<string>,
  ) {
    super(inner);
  }
  override async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    this.ranges += 1;
    if (this.removed.has(key)) this.ofRemoved += 1;
    try {
      const data = await super.getRange(key, offset, length);
      this.bytes += data.length;
      return data;
    } catch (error) {
      this.failed += 1;
      throw error;
    }
  }
}

/** Rewrites `share` of the 256 KiB blocks of `disk` with fresh random bytes from `bytes`, at places `seed` picks. */
function rewriteBlocks(disk: Buffer, share: number, seed: number, bytes: ByteStream): void {
  const prng = new Prng(seed);
  for (let at = 0; at < disk.length; at += BLOCK) if (prng.nextU32() / 2 ** 32 < share) bytes.next(BLOCK).copy(disk, at);
}

/** The disk's three states, one buffer changed in place; the second (the one restored) saved as `kept.raw` once backed up. */
async function* versions(): AsyncIterable<Buffer> {
  const bytes = new ByteStream('restore-after-prune');
  const disk = bytes.next(mib * 1024 * 1024);
  yield disk;
  rewriteBlocks(disk, 0.3, 0x2545f491, bytes);
  yield disk;
  await writeFile(path.join(work, 'kept.raw'), disk);
  rewriteBlocks(disk, 0.05, 0x9e3779b9, bytes);
  yield disk;
}

async function prepare(): Promise<{ removed: Set<string>; prune: unknown }> {
  await coffer('init', '-r', repoDir);
  const repo = await openRepository(new LocalBackend(repoDir), { passphrase });
  try {
    const repacked = await repackRepository(repo, { versions: versions(), imageDir: work });
    if ((repacked.report.packs?.packsRepacked ?? 0) === 0) throw new Error(`the prune repacked nothing: ${JSON.stringify(repacked.report.packs)}`);
    const removed = new Set(repacked.removed.keys());
    await writeFile(path.join(work, 'prepared.json'), JSON.stringify({ removed: [...removed], prune: repacked.report }));
    return { removed, prune: repacked.report };
  } finally {
    await repo.close();
  }
}

async function sameFile(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([open(a), open(b)]);
  try {
    const bx = Buffer.alloc(16 << 20);
    const by = Buffer.alloc(16 << 20);
    for (let at = 0; ; at += bx.length) {
      const [{ bytesRead: nx }, { bytesRead: ny }] = await Promise.all([x.read(bx, 0, bx.length, at), y.read(by, 0, by.length, at)]);
      if (nx !== ny || !bx.subarray(0, nx).equals(by.subarray(0, ny))) return false;
      if (nx === 0) return true;
    }
  } finally {
    await x.close();
    await y.close();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main(): Promise<void> {
  const reuse = process.env.BENCH_REUSE === '1' && (await readFile(path.join(work, 'prepared.json'), 'utf8').catch(() => '')) !== '';
  if (!reuse) await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  try {
    const prepared = reuse ? (JSON.parse(await readFile(path.join(work, 'prepared.json'), 'utf8')) as { removed: string[]; prune: unknown }) : await prepare();
    const removed = new Set(prepared.removed);
    console.log(`prune: ${JSON.stringify(prepared.prune)}`);
    console.log(`packs removed by the prune: ${removed.size}`);
    const kept = path.join(work, 'kept.raw');
    const to = path.join(work, 'restored.raw');
    const snapshots = JSON.parse((await coffer('snapshots', '-r', repoDir, '--json')).stdout) as { id: string; time: string }[];
    const oldest = [...snapshots].sort((a, b) => a.time.localeCompare(b.time))[0];
    if (oldest === undefined) throw new Error('no snapshot kept');

    // Ranged reads, counted in this process (a repository opened afresh, as the CLI does).
    const backend = new CountingBackend(new LocalBackend(repoDir), removed);
    const repo = await openRepository(backend, { passphrase });
    try {
      const snapshot = (await listSnapshots(repo)).find((s) => s.id === oldest.id);
      if (snapshot === undefined) throw new Error('snapshot gone');
      await restoreSnapshot(repo, snapshot, { to, overwrite: true });
    } finally {
      await repo.close();
    }
    if (!(await sameFile(to, kept))) throw new Error('the restore differs from the disk backed up');
    console.log(`ranged reads: ${backend.ranges} (failed ${backend.failed}, of removed packs ${backend.ofRemoved}), ${(backend.bytes / 2 ** 20).toFixed(1)} MiB read`);

    const measured: Measurement[] = [];
    for (let i = 0; i < runs; i++) {
      await rm(to, { force: true });
      const { m } = await timed(process.execPath, [cofferBin, 'restore', '-r', repoDir, oldest.id, '--to', to], { env });
      if (!(await sameFile(to, kept))) throw new Error('the restore differs from the disk backed up');
      measured.push(m);
      console.log(`restore ${i + 1}: ${m.wallS.toFixed(2)} s wall, ${m.cpuS.toFixed(2)} CPU-s, ${(m.maxRssKiB / 1024).toFixed(0)} MiB RSS`);
    }
    console.log(
      `median of ${runs}: ${median(measured.map((m) => m.wallS)).toFixed(2)} s wall, ${median(measured.map((m) => m.cpuS)).toFixed(2)} CPU-s, ${(median(measured.map((m) => m.maxRssKiB)) / 1024).toFixed(0)} MiB RSS; load ${(await readFile('/proc/loadavg', 'utf8')).trim()}`,
    );
    await rm(to, { force: true });
  } finally {
    if (process.env.BENCH_KEEP !== '1' && process.env.BENCH_REUSE !== '1') await rm(work, { recursive: true, force: true });
  }
}

await main();
