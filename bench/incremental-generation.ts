/**
 * What the prune generation saves an incremental with no prune since its parent
 * (docs/repository-format.md §19.11), in a minute: a format 2 repository, a disk of seeded
 * random data (`BENCH_IG_MIB`, default 512: 64 packs of 8 MiB), one full backup; then a copy of
 * its manifest without `prunedThrough` (what a snapshot written before the generation looks
 * like: its incremental asks `has` of every pack it names, the path before); then
 * `BENCH_IG_RUNS` (default 5) pairs of unchanged incrementals, alternating the parent with the
 * mark and the one without, each in a repository opened afresh through a backend that counts
 * its calls (and, with `BENCH_IG_LATENCY_MS`, delays each by that much, as a round trip to
 * object storage would: the local backend's preferred concurrency of 8 applies, not S3's 32).
 * The image file is unchanged, so the backup reads none of it (its layers are the parent's):
 * what is left is the incremental's fixed cost, where the `has` per pack was. Prints per run the CPU seconds of this process (user + sys, worker threads
 * included), the wall time, and the calls by kind; then the medians.
 *
 * Run: `node dist/bench/incremental-generation.js` (`BENCH_KEEP=1` keeps
 * `bench/work/run/incremental-generation`).
 *
 * @module
 */
import { mkdir, open, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { backupVm } from '../src/backup/index.js';
import { ForwardingBackend } from '../src/repo/backend/forwarding-backend.js';
import { LocalBackend } from '../src/repo/backend/local-backend.js';
import { initRepository, openRepository, saveSnapshot, type BackendEntry, type Snapshot } from '../src/repo/index.js';
import { openImageSource } from '../src/source/index.js';
import { ByteStream } from './random.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const work = path.join(root, 'bench', 'work', 'run', 'incremental-generation');
const repoDir = path.join(work, 'repo');
const image = path.join(work, 'disk.raw');
const passphrase = 'bench-incremental-generation';
const runs = Number(process.env.BENCH_IG_RUNS ?? 5);
const mib = Number(process.env.BENCH_IG_MIB ?? 512);
const latencyMs = Number(process.env.BENCH_IG_LATENCY_MS ?? 0);
const delay = () => (latencyMs > 0 ? new Promise<void>((resolve) => setTimeout(resolve, latencyMs)) : Promise.resolve());

/** Counts `has` of packs, every other call by kind and prefix. */
class CountingBackend extends ForwardingBackend {
  readonly calls = new Map<string, number>();
  private count(what: string): void {
    this.calls.set(what, (this.calls.get(what) ?? 0) + 1);
  }
  private static prefix(key: string): string {
    return key.slice(0, key.indexOf('/') + 1) || key;
  }
  override async has(key: string): Promise<boolean> {
    this.count(`has ${CountingBackend.prefix(key)}`);
    await delay();
    return super.has(key);
  }
  override async get(key: string): Promise<Buffer> {
    this.count(`get ${CountingBackend.prefix(key)}`);
    await delay();
    return super.get(key);
  }
  override async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    this.count(`getRange ${CountingBackend.prefix(key)}`);
    await delay();
    return super.getRange(key, offset, length);
  }
  override async *list(prefix: string): AsyncIterable<BackendEntry> {
    this.count(`list ${prefix}`);
    await delay();
    yield* super.list(prefix);
  }
  override async put(key: string, data: Uint8Array): Promise<void> {
    this.count(`put ${CountingBackend.prefix(key)}`);
    await delay();
    return super.put(key, data);
  }
}

async function incremental(parent: Snapshot): Promise<{ cpu: number; wall: number; calls: Map<string, number> }> {
  const backend = new CountingBackend(new LocalBackend(repoDir));
  const repo = await openRepository(backend, { passphrase });
  const source = await openImageSource('bench', [image]);
  try {
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    await backupVm(repo, source, { parent });
    const cpu = process.cpuUsage(cpu0);
    return { cpu: (cpu.user + cpu.system) / 1e6, wall: (performance.now() - wall0) / 1e3, calls: backend.calls };
  } finally {
    await source.close();
    await repo.close();
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
const describe = (calls: Map<string, number>) => [...calls].sort().map(([what, n]) => `${what} ${n}`).join(', ');

await rm(work, { recursive: true, force: true });
await mkdir(work, { recursive: true });
const file = await open(image, 'w');
const bytes = new ByteStream('incremental-generation');
for (let i = 0; i < mib; i++) await file.write(bytes.next(1024 * 1024));
await file.close();
await initRepository(new LocalBackend(repoDir), { passphrase, kdf: { N: 1024, r: 8, p: 1 }, format: 2 });
const repo = await openRepository(new LocalBackend(repoDir), { passphrase });
const source = await openImageSource('bench', [image]);
const full = await backupVm(repo, source);
await source.close();
const { id: _id, prunedThrough: _mark, ...manifest } = full;
const unmarked = await saveSnapshot(repo, manifest);
await repo.close();
console.log(`${mib} MiB of random data, ${latencyMs} ms a request, full backup ${full.id.slice(0, 12)} (prunedThrough ${full.prunedThrough}), its copy without the mark ${unmarked.id.slice(0, 12)}`);

const results = { before: [] as { cpu: number; wall: number }[], generation: [] as { cpu: number; wall: number }[] };
for (let i = 0; i < runs; i++) {
  for (const [label, parent] of [['before', unmarked], ['generation', full]] as const) {
    const r = await incremental(parent);
    results[label].push(r);
    console.log(`run ${i + 1} ${label.padEnd(10)} ${r.cpu.toFixed(2)} CPU-s ${r.wall.toFixed(2)} s  ${describe(r.calls)}`);
  }
}
for (const label of ['before', 'generation'] as const) {
  console.log(`median ${label.padEnd(10)} ${median(results[label].map((r) => r.cpu)).toFixed(2)} CPU-s ${median(results[label].map((r) => r.wall)).toFixed(2)} s`);
}
if (process.env.BENCH_KEEP !== '1') await rm(work, { recursive: true, force: true });
