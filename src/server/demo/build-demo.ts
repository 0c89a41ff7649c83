/**
 * The demo inventory of `npm start`, built once in a data directory and reused after:
 *
 *     DIR/images/        web1 (ext4, raw), db1 (ext4, qcow2), files1 (FAT16), win1 (NTFS)
 *     DIR/repository/    a local encrypted repository
 *     DIR/repository.passphrase   its passphrase (random, mode 0600)
 *     DIR/server/        the server's data directory, with coffer.yaml: two hosts, the four
 *                        VMs, one nightly job with a retention policy and a backup window
 *     DIR/READY          written last: a build interrupted half-way is started again
 */
import { randomBytes } from 'node:crypto';
import { access, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { makeFolders } from '../../native/index.js';
import { LocalBackend, initRepository } from '../../repo/index.js';
import { buildExt4Disk, buildFatDisk, buildNtfsDisk, buildQcow2Disk, checkDemoTools, demoFiles } from './demo-images.js';

/** The demo's VMs: name, host, image file, and how it is made. */
export const DEMO_VMS = [
  { name: 'web1', host: 'hv1', file: 'web1.raw', sizeMiB: 32, build: buildExt4Disk, tags: ['web', 'linux'] },
  { name: 'db1', host: 'hv1', file: 'db1.qcow2', sizeMiB: 32, build: buildQcow2Disk, tags: ['db', 'linux'] },
  { name: 'files1', host: 'hv2', file: 'files1.img', sizeMiB: 16, build: buildFatDisk, tags: ['files'] },
  { name: 'win1', host: 'hv2', file: 'win1.img', sizeMiB: 16, build: buildNtfsDisk, tags: ['windows'] },
] as const;

/** The demo's job. */
export const DEMO_JOB = 'nightly';

export interface DemoLayout {
  dir: string;
  serverDir: string;
  configFile: string;
  repository: string;
  passphraseFile: string;
}

export function demoLayout(dir: string): DemoLayout {
  const root = resolve(dir);
  return { dir: root, serverDir: join(root, 'server'), configFile: join(root, 'server', 'coffer.yaml'), repository: join(root, 'repository'), passphraseFile: join(root, 'repository.passphrase') };
}

/** Builds the demo in `dir` unless it is there already; returns its layout and whether it was built now. */
export async function ensureDemo(dir: string, print: (line: string) => void): Promise<{ layout: DemoLayout; built: boolean }> {
  const layout = demoLayout(dir);
  const ready = join(layout.dir, 'READY');
  if (await access(ready).then(() => true, () => false)) return { layout, built: false };
  await checkDemoTools();
  print(`demo: building the demo inventory in ${layout.dir} (once)`);
  for (const sub of ['images', 'repository', 'server', 'work']) await rm(join(layout.dir, sub), { recursive: true, force: true });
  const images = join(layout.dir, 'images');
  const work = join(layout.dir, 'work');
  await makeFolders(images);
  await makeFolders(work);
  for (const vm of DEMO_VMS) {
    await vm.build(join(images, vm.file), vm.sizeMiB, demoFiles(vm.name), work);
    print(`demo:   ${vm.name} on ${vm.host}: ${vm.file} (${vm.sizeMiB} MiB)`);
  }
  await rm(work, { recursive: true, force: true });

  const passphrase = randomBytes(24).toString('base64url');
  await writeFile(layout.passphraseFile, `${passphrase}\n`, { mode: 0o600 });
  await makeFolders(layout.repository);
  await initRepository(new LocalBackend(layout.repository), { passphrase }); // the default format, 2, as coffer init
  print(`demo:   an encrypted repository at ${layout.repository} (passphrase in ${layout.passphraseFile})`);

  await makeFolders(layout.serverDir, 0o700);
  await writeFile(layout.configFile, demoConfig(layout));
  await writeFile(ready, `${new Date().toISOString()}\n`);
  return { layout, built: true };
}

/** The demo's configuration file (docs/server-config.md). */
export function demoConfig(layout: DemoLayout): string {
  const vms = DEMO_VMS.map((vm) => `  - name: ${vm.name}
    host: ${vm.host}
    datastore: ${vm.host}-local
    source: { images: [${JSON.stringify(join(layout.dir, 'images', vm.file))}] }
    tags: [${vm.tags.join(', ')}]
    rpo: 26h`).join('\n');
  return `# The demo inventory made by npm start (src/server/demo). Every key: docs/server-config.md.
security:
  four-eyes: false

repositories:
  - name: demo
    url: ${JSON.stringify(layout.repository)}
    passphrase-file: ${JSON.stringify(layout.passphraseFile)}

hosts:
  - name: hv1
    datastores: [hv1-local]
  - name: hv2
    datastores: [hv2-local]

vms:
${vms}

jobs:
  - name: ${DEMO_JOB}
    select: { hosts: [hv1, hv2] }
    repository: demo
    schedule: "*-*-* 01:00"
    timezone: UTC
    repeat-missed: false
    window: { start: "01:00", end: "06:00" }
    retention: { keep-daily: 7, keep-weekly: 4, keep-monthly: 6 }

limits:
  per-host: 1

tasks:
  retries: 2
  retry-delay: 5m
  history: 90d

metrics:
  enabled: true
`;
}
