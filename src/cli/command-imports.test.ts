/**
 * What a command loads at start-up: each command's module is imported when it runs
 * (main.ts), and a command must not pull in code it never runs. Loading ~150 modules of
 * restore, volume and filesystem code cost `coffer snapshots` (and every `coffer backup`,
 * which imports it) about 0.1 CPU-s before this was pinned (bench/README.md, "fixed cost").
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const distSrc = new URL('../', import.meta.url).href;

/** The dist/src folders whose modules a child process loads when it imports `module` (relative to dist/src). */
async function foldersLoadedBy(module: string): Promise<Set<string>> {
  return new Set([...(await modulesLoadedBy(module))].map((file) => file.split('/')[0] as string));
}

/** The dist/src modules (paths relative to dist/src) a child process loads when it imports `module`. */
async function modulesLoadedBy(module: string): Promise<Set<string>> {
  // A module loader hook (node:module register) that prints every file: URL it loads.
  const hook = `export async function load(url, context, next) { if (url.startsWith('file:')) process.stderr.write('LOADED ' + url + '\\n'); return next(url, context); }`;
  const script = `
    import { register } from 'node:module';
    register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)});
    await import(${JSON.stringify(new URL(module, distSrc).href)});
  `;
  const { stderr } = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000 });
  const modules = new Set<string>();
  for (const line of stderr.split('\n')) {
    const url = line.startsWith('LOADED ') ? line.slice('LOADED '.length) : '';
    if (url.startsWith(distSrc)) modules.add(url.slice(distSrc.length));
  }
  return modules;
}

test('the check sees what a module loads (repair loads restore code)', async () => {
  const folders = await foldersLoadedBy('cli/commands/repair.js');
  assert.ok(folders.has('repo') && folders.has('restore'), [...folders].join(', '));
});

test('coffer snapshots loads no restore, volume or filesystem code', async () => {
  const folders = await foldersLoadedBy('cli/commands/snapshots.js');
  for (const folder of ['restore', 'volume', 'fs', 'nbd']) assert.ok(!folders.has(folder), `snapshots.js loads ${folder}/: ${[...folders].join(', ')}`);
});

test('coffer verify loads no restore, volume or filesystem code until there is damage to name files for', async () => {
  const folders = await foldersLoadedBy('cli/commands/verify.js');
  for (const folder of ['restore', 'volume', 'fs', 'nbd']) assert.ok(!folders.has(folder), `verify.js loads ${folder}/: ${[...folders].join(', ')}`);
});

test('coffer backup (of VM disks or files) loads no restore code, nor the running-VM sources until one is opened', async () => {
  for (const module of ['cli/commands/backup.js', 'cli/commands/backup-files.js']) {
    const folders = await foldersLoadedBy(module);
    // qmp/, nbd/ and xml/ (≈45 modules) serve --qemu, --libvirt and NBD bitmap lists only (source/live-sources.ts).
    for (const folder of ['restore', 'volume', 'fs', 'qmp', 'nbd', 'xml']) assert.ok(!folders.has(folder), `${module} loads ${folder}/: ${[...folders].join(', ')}`);
  }
});

test('the key-file entry loads no other repository code (its scrypt overlaps loading the rest)', async () => {
  const modules = [...(await modulesLoadedBy('repo/keys/index.js'))];
  assert.ok(modules.includes('repo/keys/key-file.js'), modules.join(', '));
  const others = modules.filter((file) => !file.startsWith('repo/keys/') && !file.startsWith('errors/'));
  assert.deepEqual(others, []);
});
