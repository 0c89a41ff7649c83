/**
 * The web console end to end, in Debian's Chromium driven by playwright-core, against a real
 * `coffer server` process (HTTPS with the certificate it made, a real SQLite file) and a real
 * repository holding a backup made by `coffer backup`: the first admin's login and forced
 * password change, the dashboard's real figures, every page visited by its navigation in the
 * light and the dark theme (prefers-color-scheme) with axe-core and a screenshot each, a token
 * shown once, a lost session back to the login and then to where the user was, a
 * RestoreOperator who sees no admin control and whom the API refuses anyway, four eyes (a
 * user's deletion and a legal-hold tag lifted on a snapshot's page, approved by a second
 * admin), and a dead server.
 * Second slice: a backup run on demand watched to its end live (events stream), the backup
 * window timeline's bars (one host's never overlap), a real ext4 and NTFS disk browsed in the
 * restore wizard, a file and a folder (tar) downloaded and compared with debugfs's and
 * ntfscat's reading of the source images, a folder and a file whose names are not UTF-8
 * (Latin-1) opened, previewed and downloaded, instant recovery started (nbdinfo reads the URI
 * the page shows) and stopped.
 * Third slice: a snapshot's disk restored to a folder in qcow2 from the wizard (equal to the
 * source image by `qemu-img compare`), a refused target's message and a failed restore's
 * message; a clone as a new VM from a snapshot carrying a libvirt definition (the real
 * libvirt's test driver defines it: new name, UUID and MAC, its disk the restored one); the
 * tape catalog on the health page after a real `coffer tape export` (and its empty state); the
 * storage forecast from the free space the server reads; a guest agent's VM added to the
 * configuration and its file snapshot (`coffer backup --files` under the VM's name) browsed:
 * browsing its files or restoring them to a folder on the server is what the wizard offers, a
 * file previewed and downloaded equal, the files restored into the folder the form proposes
 * (after its refusals of a folder outside the allowed targets and of a relative path) and
 * read back from the disk; and its next backup compared with it on the snapshot's page (the
 * paths changed, in restic's letters).
 * Screenshots: test-output/screenshots/{light,dark}/ (printed at the end).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { backupVm } from '../../backup/index.js';
import { LocalBackend, openRepository } from '../../repo/index.js';
import { openImageSource } from '../../source/index.js';
import { buildExtImage, buildNtfsImage, cachedFixture, requireTools, seededBytes } from '../../testing/index.js';
import { coffer, startCofferServer, type CofferServer } from './coffer-process.js';
import { screenshot, SCREENSHOT_DIR, seriousAxeViolations, watchForScriptErrors } from './page-checks.js';

const DISK_BYTES = 2 * 1024 * 1024;
const ADMIN_PASSWORD = 'console-admin-password-1';
const HELPDESK_PASSWORD = 'helpdesk-password-1';
const ADMIN2_PASSWORD = 'second-admin-password-1';
const STEP_TIMEOUT_MS = 10_000;
const MiB = 1024 * 1024;
/** The file server's two disks: a 96 MiB ext4 and a 96 MiB NTFS image (src/testing fixtures). */
const FILES_DISK_BYTES = 96 * MiB;
const run = promisify(execFile);

let dir: string;
let server: CofferServer;
let browser: Browser;
let admin: BrowserContext;
let adminPage: Page;
let snapshotId: string;
let ext4Image: string;
let ntfsImage: string;
/** web1's disk (raw), app1's disk (raw, backed up with a libvirt definition into the second repository). */
let webDisk: string;
let appDisk: string;
/** app1's libvirt domain (the test driver's) as backed up. */
let appXml: string;
/** The PNG on broken's disk once it is written (a screenshot of the console's header). */
let logoPng: Buffer;
/** Also on broken's disk: a folder and a file a Latin-1 guest named (`déjà/résumé.txt`), their names bytes that are not UTF-8. */
const LATIN1_FOLDER = Buffer.from('d\xe9j\xe0', 'latin1');
const LATIN1_FILE = Buffer.from('r\xe9sum\xe9.txt', 'latin1');
const LATIN1_TEXT = 'A Latin-1 guest named this folder and this file.\n';
/** A path below `root` whose names are bytes. */
const bytePath = (root: string, ...names: Buffer[]): Buffer => Buffer.concat([Buffer.from(root), ...names.flatMap((n) => [Buffer.from('/'), n])]);
let dataDir: string;
const TAPE = 'tape-main.tar';
const scriptErrors: string[] = [];

const config = (disk: string, repo: string, passFile: string, archive: string) => `security:
  four-eyes: false
repositories:
  - name: main
    url: ${repo}
    passphrase-file: ${passFile}
  - name: archive
    url: ${archive}
    passphrase-file: ${passFile}
hosts:
  - name: hv1
    datastores: [ssd1]
  - name: hv2
vms:
  - name: web1
    host: hv1
    datastore: ssd1
    source: { images: [${disk}] }
    tags: [web]
    rpo: 26h
  - name: fileserver
    host: hv1
    source: { images: [${ext4Image}, ${ntfsImage}] }
    tags: [web]
  - name: db1
    host: hv2
    source: { qmp: /run/db1.qmp }
    rpo: 1h
  - name: app1
    host: hv2
    source: { images: [${appDisk}] }
  - name: broken
    host: hv2
    source: { images: [${join(dir, 'missing.raw')}] }
    tags: [fragile]
tasks:
  retries: 1
  retry-delay: 1s
jobs:
  - name: nightly
    select: { tags: [web] }
    repository: main
    schedule: "mon..fri 22:00"
    timezone: Europe/Berlin
  - name: fragile
    select: { tags: [fragile] }
    repository: main
    schedule: "*-*-01 05:00"
  - name: monthly
    select: { names: [app1] }
    repository: archive
    schedule: "*-*-01 04:00"
`;

before(async () => {
  await requireTools('chromium', 'debugfs', 'ntfscat', 'nbdinfo', 'tar', 'qemu-img', 'virsh', 'mke2fs', 'unzip');
  ext4Image = await buildExtImage({ sizeMiB: 96, bigFileBytes: 3_000_000 });
  ntfsImage = await buildNtfsImage({ sizeMiB: 96, bigFileBytes: 3_000_000 });
  dir = await mkdtemp(join(tmpdir(), 'coffer-console-e2e-'));
  webDisk = await cachedFixture('console-web1-disk', { bytes: DISK_BYTES, seed: 9 }, (tmp) => writeFile(tmp, seededBytes(9, DISK_BYTES)));
  appDisk = await cachedFixture('console-app1-disk', { bytes: DISK_BYTES, seed: 10 }, (tmp) => writeFile(tmp, seededBytes(10, DISK_BYTES)));
  const repo = join(dir, 'repo');
  const archive = join(dir, 'archive');
  const passFile = join(dir, 'repo.pass');
  await writeFile(passFile, 'repository passphrase\n');
  await coffer(['init', '-r', repo, '--password-file', passFile]);
  // Format 1 (one object per chunk): the damage test removes a chunk object from it. `repo` has the default, format 2.
  await coffer(['init', '--format', '1', '-r', archive, '--password-file', passFile]);
  snapshotId = (JSON.parse(await coffer(['backup', '-r', repo, '--password-file', passFile, '--vm', 'web1', '--json', webDisk])) as { id: string }).id;
  await coffer(['backup', '-r', repo, '--password-file', passFile, '--vm', 'fileserver', '--json', ext4Image, ntfsImage], 120_000);
  // The tape catalog: web1's snapshot written to a file as the "tape".
  await coffer(['tape', 'export', '-r', repo, '--password-file', passFile, snapshotId.slice(0, 8), '--to', join(dir, TAPE)]);
  // A snapshot that carries a VM definition (what a clone needs): the real libvirt's test domain, app1's disk as its vda.
  appXml = (await run('virsh', ['-c', 'test:///default', 'dumpxml', 'test'], { timeout: 60_000 })).stdout;
  const repository = await openRepository(new LocalBackend(archive), { passphrase: 'repository passphrase', threads: 1 });
  try {
    const images = await openImageSource('app1', [appDisk]);
    try {
      await backupVm(repository, { ...images, vm: 'app1', disks: images.disks.map((d) => ({ ...d, name: 'vda' })), definition: { format: 'libvirt-xml', data: Buffer.from(appXml) }, close: () => images.close() });
    } finally {
      await images.close();
    }
  } finally {
    await repository.close();
  }
  dataDir = join(dir, 'data');
  await mkdir(dataDir, { recursive: true });
  await writeFile(join(dataDir, 'coffer.yaml'), config(webDisk, repo, passFile, archive));
  server = await startCofferServer(dataDir);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  console.log(`console screenshots: ${SCREENSHOT_DIR}/{light,dark}/`);
});

async function newContext(colorScheme: 'light' | 'dark', storageState?: Awaited<ReturnType<BrowserContext['storageState']>>): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ baseURL: server.url, ignoreHTTPSErrors: true, colorScheme, viewport: { width: 1280, height: 800 }, ...(storageState === undefined ? {} : { storageState }) });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  const page = await context.newPage();
  const errors = watchForScriptErrors(page);
  page.on('close', () => scriptErrors.push(...errors));
  context.on('close', () => scriptErrors.push(...errors));
  return { context, page };
}

async function logIn(page: Page, user: string, password: string): Promise<void> {
  // (By name: Mantine's password field has a "Toggle password visibility" button whose label matches too.)
  await page.locator('input[name="user"]').fill(user);
  await page.locator('input[name="password"]').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

/** Waits for the page's heading and for every loader to go. */
async function settled(page: Page, heading: string | RegExp): Promise<void> {
  await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  // A function, not a string: the page's CSP forbids evaluating strings.
  await page.waitForFunction(() => (globalThis as unknown as { document: { querySelector(s: string): unknown } }).document.querySelector('.mantine-Loader-root') === null, undefined, { timeout: STEP_TIMEOUT_MS });
}

async function checkPage(page: Page, theme: string, name: string): Promise<void> {
  assert.deepEqual(await seriousAxeViolations(page), [], `${name} (${theme}): accessibility`);
  // No badge's word cut to "SUCCE…" by a squeezed column or a long text beside it.
  const cut = await page.locator('.mantine-Badge-label').evaluateAll((labels) => labels.filter((l) => l.scrollWidth > l.clientWidth).map((l) => l.textContent));
  assert.deepEqual(cut, [], `${name} (${theme}): badges cut short`);
  await screenshot(page, theme, name);
}

const nav = (label: string) => async (page: Page) => page.getByRole('navigation', { name: 'Main navigation' }).getByRole('link', { name: label, exact: true }).click();

/** Every page, reached the way a user reaches it: the navigation, then links on the pages. */
const TOUR: ReadonlyArray<{ name: string; heading: string | RegExp; go: (page: Page) => Promise<void> }> = [
  { name: 'dashboard', heading: 'Dashboard', go: nav('Dashboard') },
  { name: 'vms', heading: 'VMs and restore points', go: nav('VMs and restore points') },
  { name: 'vm', heading: 'VM web1', go: (page) => page.getByRole('table', { name: 'Virtual machines' }).getByRole('link', { name: 'web1' }).click() },
  {
    name: 'snapshot',
    heading: /^Snapshot [0-9a-f]{12}$/,
    go: async (page) => {
      await page.getByRole('button', { name: /, \d+ snapshots?$/ }).click();
      await page.getByRole('list', { name: /^Snapshots on / }).getByRole('link').first().click();
    },
  },
  { name: 'jobs', heading: 'Jobs', go: nav('Jobs') },
  { name: 'schedules', heading: 'Schedules', go: nav('Schedules') },
  { name: 'storage', heading: 'Storage over time', go: nav('Storage over time') },
  { name: 'health', heading: 'Repository health', go: nav('Repository health') },
  { name: 'workers', heading: 'Workers', go: nav('Workers') },
  { name: 'jobs-again', heading: 'Jobs', go: nav('Jobs') },
  { name: 'job', heading: 'Job nightly', go: (page) => page.getByRole('table', { name: 'Backup jobs' }).getByRole('link', { name: 'nightly' }).click() },
  { name: 'timeline', heading: 'Backup window', go: nav('Backup window') },
  { name: 'tasks', heading: 'Tasks', go: nav('Tasks') },
  { name: 'task', heading: /^Task [0-9a-f]{8}$/, go: (page) => page.getByRole('table', { name: 'Tasks' }).getByRole('link').first().click() },
  { name: 'restore-vm', heading: 'Restore', go: nav('Restore') },
  { name: 'restore-point', heading: 'Restore', go: (page) => page.getByRole('list', { name: 'VMs' }).getByRole('button', { name: /^fileserver/ }).click() },
  { name: 'restore-what', heading: 'Restore', go: (page) => page.getByRole('list', { name: /^Restore points on / }).getByRole('button').first().click() },
  {
    name: 'restore-files',
    heading: 'Restore',
    go: async (page) => {
      await page.getByRole('button', { name: 'Browse and download files' }).click();
      await page.getByRole('group', { name: 'Volumes' }).getByRole('button', { name: /ext4/ }).click();
      await page.getByRole('button', { name: 'Open docs/' }).click();
      await page.getByRole('button', { name: 'readme.txt' }).click();
      await page.getByTestId('text-preview').waitFor();
    },
  },
  { name: 'audit', heading: 'Audit log', go: nav('Audit log') },
  { name: 'users', heading: 'Users and grants', go: nav('Users and grants') },
  { name: 'tokens', heading: 'API tokens', go: nav('API tokens') },
  { name: 'approvals', heading: 'Approvals', go: nav('Approvals') },
];

test('the first admin logs in, must change the one-time password, then sees the dashboard with real figures', async () => {
  ({ context: admin, page: adminPage } = await newContext('light'));
  const page = adminPage;
  await page.goto('/');
  await page.waitForURL(/\/login\?next=%2F$/);
  await checkPage(page, 'light', 'login');
  await logIn(page, 'admin', server.oneTimePassword);
  await page.waitForURL(/\/password\?next=/);
  await page.getByText('This account has a one-time password').waitFor();
  await checkPage(page, 'light', 'password-forced');
  await page.locator('input[name="current"]').fill(server.oneTimePassword);
  await page.locator('input[name="new"]').fill(ADMIN_PASSWORD);
  await page.locator('input[name="again"]').fill(ADMIN_PASSWORD);
  await page.getByRole('button', { name: 'Change password' }).click();
  await settled(page, 'Dashboard');
  assert.equal(new URL(page.url()).pathname, '/');

  const stats = (await page.evaluate(async () => (await fetch('/api/v1/repositories/main/stats')).json())) as { snapshots: number; bytesLogical: number };
  assert.equal(stats.snapshots, 2);
  assert.equal(stats.bytesLogical, DISK_BYTES + 2 * FILES_DISK_BYTES);
  const row = page.getByTestId('repository-main');
  await row.getByText('194 MiB').first().waitFor();
  assert.equal((await row.locator('td').nth(1).textContent())?.trim(), '2');
  const protection = page.getByTestId('protection');
  await protection.getByText('Not covered by any job (1)').waitFor();
  assert.equal(await protection.getByRole('link', { name: 'db1' }).first().evaluate((e) => (globalThis as unknown as { getComputedStyle(x: unknown): { textTransform: string } }).getComputedStyle(e).textTransform), 'none', 'a VM name as written, not "DB1"');
  assert.match((await protection.textContent()) ?? '', /db1/);
  assert.match((await protection.textContent()) ?? '', /db1: RPO 1h, last good backup never/);
  assert.match((await page.getByTestId('next-runs').textContent()) ?? '', /nightly: .* 22:00 \(Europe\/Berlin\)/);
  await page.getByTestId('last-night').getByText('No job ran in the last 24 hours.').waitFor();
  await page.getByTestId('running').getByText('Nothing is running.').waitFor();

  // Keyboard: a page's heading takes the focus; "Skip to content" shows itself when focused;
  // Enter on a navigation link opens the page and puts the focus on its heading.
  const focused = () => page.evaluate(() => {
    const active = (globalThis as unknown as { document: { activeElement: { tagName: string; textContent: string | null } | null } }).document.activeElement;
    return `${active?.tagName ?? ''} ${active?.textContent ?? ''}`;
  });
  await page.reload();
  await settled(page, 'Dashboard');
  assert.equal(await focused(), 'H1 Dashboard');
  const skip = page.getByRole('link', { name: 'Skip to content' });
  assert.ok(((await skip.boundingBox())?.x ?? 0) < 0, 'hidden until focused');
  await skip.focus();
  assert.ok(((await skip.boundingBox())?.x ?? -1) >= 0, 'visible when focused');
  await page.getByRole('navigation', { name: 'Main navigation' }).getByRole('link', { name: 'Jobs', exact: true }).focus();
  await page.keyboard.press('Enter');
  await settled(page, 'Jobs');
  assert.equal(await focused(), 'H1 Jobs');
});

/** A call to the API from inside the page, as the signed-in user (cookie and CSRF token). */
async function api(page: Page, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  return page.evaluate(
    async ({ method, path, body }) => {
      const { csrfToken } = (await (await fetch('/api/v1/auth/me')).json()) as { csrfToken: string };
      const response = await fetch(path, { method, headers: { 'x-csrf-token': csrfToken, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      const text = await response.text();
      return { status: response.status, json: text === '' ? undefined : (JSON.parse(text) as unknown) };
    },
    { method, path, body },
  );
}

test('a backup run on demand: its tasks appear, and the task page follows it live to its end', async () => {
  const page = adminPage;
  await nav('Jobs')(page);
  await settled(page, 'Jobs');
  await page.getByRole('table', { name: 'Backup jobs' }).getByRole('link', { name: 'nightly' }).click();
  await settled(page, 'Job nightly');
  await page.getByRole('button', { name: 'Run now' }).click();
  await page.waitForURL(/\/tasks\?run=/);
  const runId = new URL(page.url()).searchParams.get('run') as string;
  await settled(page, 'Tasks');
  const table = page.getByRole('table', { name: 'Tasks' });
  await table.getByRole('link', { name: 'backup fileserver' }).waitFor();
  // A marker that a reload would lose: whatever changes from here on comes from the events stream.
  await page.evaluate(() => void ((globalThis as unknown as { stayed: boolean }).stayed = true));
  await table.getByRole('link', { name: 'backup fileserver' }).click();
  await settled(page, /^Task [0-9a-f]{8}$/);
  await page.locator('[data-status="succeeded"]').waitFor({ timeout: 90_000 });
  assert.equal(await page.evaluate(() => (globalThis as unknown as { stayed?: boolean }).stayed), true, 'the page was not reloaded');
  await page.getByTestId('task-log').waitFor();
  assert.match((await page.getByRole('region', { name: 'Figures' }).textContent()) ?? '', /Logical \(disk size\)192 MiB/);
  await checkPage(page, 'light', 'task-finished');

  const ended = await api(page, 'GET', `/api/v1/tasks?run=${runId}&wait=true&timeout=90`);
  assert.deepEqual(ended.json.items.map((t: { status: string }) => t.status), ['succeeded', 'succeeded']);
  await nav('Dashboard')(page);
  await settled(page, 'Dashboard');
  const lastNight = page.getByTestId('last-night-nightly');
  await lastNight.getByRole('link', { name: 'fileserver' }).waitFor();
  assert.equal(await lastNight.locator('[data-status="succeeded"]').count(), 3, 'the run and its two VMs succeeded');
});

test('the backup window timeline: a row per host, and one host\'s backups never overlap', async () => {
  const page = adminPage;
  await nav('Backup window')(page);
  await settled(page, 'Backup window');
  await page.getByRole('img', { name: /^Backup window: \d+ backups on 1 host / }).waitFor();
  const bars = await page.getByTestId('timeline-bar').evaluateAll((rows) =>
    rows.map((r) => ({ host: r.getAttribute('data-host'), start: Number(r.getAttribute('data-start')), end: Number(r.getAttribute('data-end')) })),
  );
  const hv1 = bars.filter((b) => b.host === 'hv1').sort((a, b) => a.start - b.start);
  assert.ok(hv1.length >= 2, JSON.stringify(bars));
  for (let i = 1; i < hv1.length; i++) assert.ok((hv1[i]?.start ?? 0) >= (hv1[i - 1]?.end ?? Infinity), `bars ${i - 1} and ${i} on hv1 overlap: ${JSON.stringify(hv1)}`);
  // A bar of the chart (ECharts' SVG: a path in the result's colour, teal 6 for succeeded) opens its task.
  await page.getByRole('img', { name: /^Backup window/ }).locator('path[fill="#12b886"]').first().click();
  await settled(page, /^Task [0-9a-f]{8}$/);
  await nav('Backup window')(page);
  await settled(page, 'Backup window');
  await page.getByRole('table', { name: 'Backups in this period' }).getByRole('link', { name: 'web1' }).first().click();
  await settled(page, /^Task [0-9a-f]{8}$/);
});

test('a failed VM: last night on the dashboard says why, "Run failed again" there runs just it, and the timeline shows its bar as failed; its disk written, it succeeds', async () => {
  const page = adminPage;
  const first = await api(page, 'POST', '/api/v1/jobs/fragile/run');
  assert.equal(first.status, 202, JSON.stringify(first.json));
  const failed = await api(page, 'GET', `/api/v1/tasks?run=${first.json.id}&wait=true&timeout=90`);
  // Tried twice (tasks.retries: 1): the dashboard shows the last attempt only.
  assert.deepEqual(failed.json.items.map((t: { vm: string; attempt: number; status: string }) => [t.vm, t.attempt, t.status]).sort(), [['broken', 1, 'failed'], ['broken', 2, 'failed']]);
  await nav('Dashboard')(page);
  await settled(page, 'Dashboard');
  const card = page.getByTestId('last-night-fragile');
  // (The run's own badge comes first; its VMs' lines once the run's details are read.)
  await card.getByRole('link', { name: 'broken' }).waitFor();
  // The error text as the task has it, beside the VM's name.
  const message = failed.json.items[0].error.message as string;
  assert.match(message, /missing\.raw/);
  assert.ok(((await card.textContent()) ?? '').includes(`broken (attempt 2): ${message}`), (await card.textContent()) ?? '');
  assert.equal(await card.getByRole('link', { name: 'broken' }).count(), 1, 'one line for the VM, not one per attempt');
  // (checkPage also finds every state word whole, not cut by the error text beside it.)
  await checkPage(page, 'light', 'dashboard-failed');
  await checkPage(page, 'dark', 'dashboard-failed');
  // The run that went well offers nothing to run again.
  assert.equal(await page.getByTestId('last-night-nightly').getByRole('button', { name: 'Run failed again' }).count(), 0);
  await card.getByRole('button', { name: 'Run failed again' }).click();
  await page.waitForURL(/\/tasks\?run=/);
  const againId = new URL(page.url()).searchParams.get('run') as string;
  assert.notEqual(againId, first.json.id);
  await settled(page, 'Tasks');
  await page.getByRole('table', { name: 'Tasks' }).getByRole('link', { name: 'backup broken' }).waitFor();
  assert.deepEqual((await api(page, 'GET', `/api/v1/runs/${againId}`)).json.vms, ['broken']);
  await api(page, 'GET', `/api/v1/tasks?run=${againId}&wait=true&timeout=90`);
  await nav('Backup window')(page);
  await settled(page, 'Backup window');
  const hv2 = page.getByTestId('timeline-bar').and(page.locator('[data-host="hv2"]'));
  assert.equal(await hv2.count(), 4, 'both attempts of both runs of broken, on hv2');
  assert.equal(await hv2.locator('[data-status="failed"]').count(), 4);
  assert.ok(((await hv2.first().textContent()) ?? '').includes(message));
  // A failed bar is drawn in red (red 6: #fa5252), the succeeded ones stay teal.
  await page.getByRole('img', { name: /^Backup window: \d+ backups on 2 hosts / }).locator('path[fill="#fa5252"]').first().waitFor();
  await checkPage(page, 'light', 'timeline-failed');

  // The disk is back, an ext4 holding a picture (previewed and zipped below): "Run failed
  // again" on the job's page runs just broken, which now succeeds.
  const tree = join(dir, 'broken-tree');
  await mkdir(join(tree, 'pictures'), { recursive: true });
  logoPng = await page.screenshot({ clip: { x: 0, y: 0, width: 240, height: 56 } });
  await writeFile(join(tree, 'pictures', 'logo.png'), logoPng);
  await writeFile(join(tree, 'pictures', 'caption.txt'), "The console's header, as a picture.\n");
  await mkdir(bytePath(tree, LATIN1_FOLDER));
  await writeFile(bytePath(tree, LATIN1_FOLDER, LATIN1_FILE), LATIN1_TEXT);
  const disk = join(dir, 'missing.raw');
  await writeFile(disk, Buffer.alloc(8 * MiB));
  await run('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, disk]);
  await page.goto('/jobs/fragile');
  await settled(page, 'Job fragile');
  await page.getByRole('button', { name: 'Run failed again' }).click();
  await page.waitForURL(/\/tasks\?run=/);
  const fixed = new URL(page.url()).searchParams.get('run') as string;
  assert.deepEqual((await api(page, 'GET', `/api/v1/runs/${fixed}`)).json.vms, ['broken']);
  const ended = await api(page, 'GET', `/api/v1/tasks?run=${fixed}&wait=true&timeout=90`);
  assert.deepEqual(ended.json.items.map((t: { vm: string; status: string }) => [t.vm, t.status]), [['broken', 'succeeded']]);
});

test('storage over time: each VM\'s latest size, the bytes stored today, and when the storage fills at that growth', async () => {
  const page = adminPage;
  await nav('Storage over time')(page);
  await settled(page, 'Storage over time');
  const perVm = page.getByRole('table', { name: 'Storage per VM' });
  await perVm.getByRole('row', { name: /^fileserver 2 192 MiB/ }).waitFor();
  // Per VM as a plot too: one stacked series per VM that has a snapshot in main.
  const vmsInMain = new Set(((await api(page, 'GET', '/api/v1/repositories/main/snapshots?limit=500')).json.items as Array<{ vm: string }>).map((s) => s.vm)).size;
  await page.getByRole('img', { name: new RegExp(`^Protected bytes of each VM in main per day over the last 60 days \\(${vmsInMain} VMs;`) }).waitFor();
  const stored = (await api(page, 'GET', '/api/v1/tasks?status=succeeded&limit=500')).json.items.filter((t: { kind: string }) => t.kind === 'backup').reduce((sum: number, t: { result: { bytesStored: number } }) => sum + t.result.bytesStored, 0);
  assert.match((await page.getByTestId('growth').textContent()) ?? '', stored === 0 ? /Nothing stored/ : /stored per day/);
  // The free space comes from the server (statfs of the repository's folder), no longer asked.
  const space = (await api(page, 'GET', '/api/v1/repositories/main/space')).json as { freeBytes: number; totalBytes: number };
  assert.ok(space.freeBytes > 0 && space.totalBytes >= space.freeBytes, JSON.stringify(space));
  assert.match((await page.getByTestId('free-space').textContent()) ?? '', new RegExp(`^Free: [\\d.]+ [KMGTP]?i?B of [\\d.]+ [KMGTP]?i?B \\(the filesystem holding ${join(dir, 'repo')}\\)\\.$`));
  assert.equal(await page.getByLabel("Space of the repository's storage (GiB)").count(), 0, 'the size is not asked for');
  const forecast = (await page.getByTestId('fill-forecast').textContent()) ?? '';
  if (stored === 0) assert.equal(forecast, 'It does not grow at the moment.');
  else assert.match(forecast, /^(Full in about \d+ (days|years)|Not full within a hundred years) at the current growth\.$/);
  // No raw float (the average of bytes per day was shown as "424.14285714285717 B").
  assert.doesNotMatch((await page.getByTestId('growth').textContent()) ?? '', /\d\.\d{3,}/);
  await checkPage(page, 'light', 'storage-free-space');
  // By month: the same history over 12 months, grouped.
  await page.getByRole('radiogroup', { name: 'Period' }).getByText('12 months, by month').click();
  await page.getByRole('img', { name: /^Protected and stored bytes of main per month over the last 12 months/ }).waitFor();
  await page.getByRole('img', { name: /^Protected bytes of each VM in main per month over the last 12 months/ }).waitFor();
  const month = new Date().toISOString().slice(0, 7);
  if (stored === 0) await page.getByText('No backup run by the server stored new data in the last 12 months').waitFor();
  else await page.getByRole('table', { name: 'Storage per month' }).getByRole('row', { name: new RegExp(`^${month} `) }).waitFor();
  await checkPage(page, 'light', 'storage-by-month');
});

test('every page, by its navigation, in the light and the dark theme: no serious accessibility violation, a screenshot each', async () => {
  const dark = await newContext('dark', await admin.storageState());
  try {
    for (const [theme, page] of [['light', adminPage], ['dark', dark.page]] as const) {
      if (theme === 'dark') await page.goto('/');
      else await nav('Dashboard')(page);
      await settled(page, 'Dashboard');
      assert.equal(await page.locator('html').getAttribute('data-mantine-color-scheme'), theme, 'the theme follows prefers-color-scheme');
      for (const stop of TOUR) {
        await stop.go(page);
        await settled(page, stop.heading);
        await checkPage(page, theme, stop.name);
      }
      assert.match(new URL(page.url()).pathname, /^\/approvals$/);
      await page.goto(`/repositories/main/snapshots/${snapshotId}`);
      await settled(page, `Snapshot ${snapshotId.slice(0, 12)}`);
      await page.goto('/password');
      await page.getByRole('heading', { name: 'Change your password' }).waitFor();
      await checkPage(page, theme, 'password');
      await page.goto('/');
      await settled(page, 'Dashboard');
    }
    const phone = await newContext('light', await admin.storageState());
    await phone.page.setViewportSize({ width: 390, height: 844 });
    await phone.page.goto('/');
    await settled(phone.page, 'Dashboard');
    await phone.page.getByRole('button', { name: 'Open the navigation' }).click();
    await phone.page.getByRole('navigation', { name: 'Main navigation' }).getByRole('link', { name: 'Jobs', exact: true }).click();
    await settled(phone.page, 'Jobs');
    await checkPage(phone.page, 'light', 'jobs-phone');
    for (const [path, heading, name] of [['/', 'Dashboard', 'dashboard-phone'], ['/timeline', 'Backup window', 'timeline-phone'], ['/tasks', 'Tasks', 'tasks-phone'], ['/restore?vm=fileserver', 'Restore', 'restore-phone'], ['/storage', 'Storage over time', 'storage-phone']] as const) {
      await phone.page.goto(path);
      await settled(phone.page, heading);
      await checkPage(phone.page, 'light', name);
      const overflow = await phone.page.evaluate(() => {
        const d = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document.documentElement;
        return d.scrollWidth - d.clientWidth;
      });
      assert.ok(overflow <= 0, `${path}: the page is ${overflow} px wider than a phone's screen`);
    }
    await phone.context.close();

    // The toggle overrides the system's preference, and the choice survives a reload.
    await dark.page.goto('/');
    await settled(dark.page, 'Dashboard');
    await dark.page.getByRole('button', { name: 'Switch to the light theme' }).click();
    assert.equal(await dark.page.locator('html').getAttribute('data-mantine-color-scheme'), 'light');
    await dark.page.reload();
    await settled(dark.page, 'Dashboard');
    assert.equal(await dark.page.locator('html').getAttribute('data-mantine-color-scheme'), 'light');

    const login = await newContext('dark');
    await login.page.goto('/login');
    await login.page.getByRole('button', { name: 'Log in' }).waitFor();
    await checkPage(login.page, 'dark', 'login');
    await login.context.close();
  } finally {
    await dark.context.close();
  }
});

/** The bytes of a download the page starts with `click`. */
async function downloaded(page: Page, click: () => Promise<void>): Promise<Buffer> {
  const [download] = await Promise.all([page.waitForEvent('download'), click()]);
  const path = await download.path();
  return readFile(path);
}

test('browse the snapshot\'s ext4 and NTFS volumes; a file and a folder (tar) downloaded equal what debugfs and ntfscat read', async () => {
  const page = adminPage;
  await nav('Restore')(page);
  await settled(page, 'Restore');
  await page.getByRole('list', { name: 'VMs' }).getByRole('button', { name: /^fileserver/ }).click();
  // "Which night still had this file?": both snapshots (set-up and the run), both volumes.
  await page.getByLabel('Which night still had this file?').fill('readme.txt');
  await page.getByRole('button', { name: "Search fileserver's snapshots" }).click();
  const found = page.getByTestId('search-results');
  await found.waitFor({ timeout: 30_000 });
  assert.equal(await found.getByText('/docs/readme.txt').count(), 4, (await found.textContent()) ?? '');
  assert.deepEqual(await found.getByTestId('search-snapshot').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-matches'))), ['2', '2'], 'each snapshot, with its matches');
  assert.match((await page.getByTestId('search-summary').textContent()) ?? '', /^The newest snapshot searched has “readme\.txt”/);
  await checkPage(page, 'light', 'restore-search');
  // A name no snapshot holds: each night searched says "not in this snapshot".
  await page.getByLabel('Which night still had this file?').fill('no-such-file.txt');
  await page.getByRole('button', { name: "Search fileserver's snapshots" }).click();
  await page.getByTestId('search-summary').getByText('No file named “no-such-file.txt” in the 2 snapshots searched (of 2).').waitFor({ timeout: 30_000 });
  assert.equal(await found.getByText('not in this snapshot').count(), 2);
  await page.getByRole('list', { name: /^Restore points on / }).getByRole('button').first().click();
  await page.getByRole('button', { name: 'Browse and download files' }).click();
  const readers = {
    ext4: (path: string) => run('debugfs', ['-R', `cat ${path}`, ext4Image], { encoding: 'buffer' }).then((r) => r.stdout),
    ntfs: (path: string) => run('ntfscat', [ntfsImage, path], { encoding: 'buffer' }).then((r) => r.stdout),
  };
  for (const fs of ['ext4', 'ntfs'] as const) {
    await page.getByRole('group', { name: 'Volumes' }).getByRole('button', { name: new RegExp(`· ${fs}`) }).click();
    await page.getByRole('button', { name: 'Open docs/' }).click();
    await page.getByRole('table', { name: 'Files in /docs' }).waitFor();
    await page.getByRole('button', { name: 'readme.txt' }).click();
    const want = await readers[fs]('/docs/readme.txt');
    assert.equal(await page.getByTestId('text-preview').textContent(), want.toString('utf8'), `${fs}: the preview`);
    const file = await downloaded(page, () => page.getByRole('link', { name: 'Download readme.txt' }).click());
    assert.deepEqual(file, want, `${fs}: the downloaded file`);
    await checkPage(page, 'light', `restore-files-${fs}`);

    const tar = await downloaded(page, () => page.getByRole('link', { name: 'Download this folder as tar' }).click());
    const out = join(dir, `tar-${fs}`);
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'docs.tar'), tar);
    await run('tar', ['-xf', 'docs.tar'], { cwd: out });
    const names = (await readdir(join(out, 'docs'))).sort();
    assert.ok(names.includes('readme.txt') && names.includes('notes.txt'), `${fs}: ${names.join(', ')}`);
    for (const name of ['readme.txt', 'notes.txt', 'empty.txt']) assert.deepEqual(await readFile(join(out, 'docs', name)), await readers[fs](`/docs/${name}`), `${fs}: docs/${name} in the tar`);
  }
});

test('a picture previewed as an image and downloaded, and a folder downloaded as zip, equal to the files on broken\'s ext4 disk', async () => {
  const page = adminPage;
  await wizardAction(page, 'broken', 'Browse and download files');
  await page.getByRole('group', { name: 'Volumes' }).getByRole('button', { name: /ext4/ }).click();
  await page.getByRole('button', { name: 'Open pictures/' }).click();
  await page.getByRole('button', { name: 'logo.png' }).click();
  const image = page.getByRole('img', { name: 'Image logo.png' });
  await image.waitFor();
  // Decoded by the browser: its natural size is the screenshot's.
  await page.waitForFunction((el) => (el as unknown as { complete: boolean; naturalWidth: number }).complete && (el as unknown as { naturalWidth: number }).naturalWidth > 0, await image.elementHandle());
  assert.deepEqual(await image.evaluate((el) => [(el as unknown as { naturalWidth: number }).naturalWidth, (el as unknown as { naturalHeight: number }).naturalHeight]), [240, 56]);
  assert.deepEqual(await downloaded(page, () => page.getByRole('link', { name: 'Download logo.png' }).click()), logoPng);
  await checkPage(page, 'light', 'restore-image-preview');
  const zip = await downloaded(page, () => page.getByRole('link', { name: 'Download this folder as zip' }).click());
  const out = join(dir, 'zip-broken');
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'pictures.zip'), zip);
  await run('unzip', ['-q', 'pictures.zip'], { cwd: out });
  assert.deepEqual(await readFile(join(out, 'pictures', 'logo.png')), logoPng);
  assert.equal(await readFile(join(out, 'pictures', 'caption.txt'), 'utf8'), "The console's header, as a picture.\n");
});

test('a folder and a file whose names are not UTF-8 (a Latin-1 guest\'s déjà/résumé.txt): shown as \\xNN, opened, previewed, downloaded, and the folder\'s tar holds their bytes', async () => {
  const page = adminPage;
  await wizardAction(page, 'broken', 'Browse and download files');
  await page.getByRole('group', { name: 'Volumes' }).getByRole('button', { name: /ext4/ }).click();
  const folder = page.getByRole('button', { name: 'Open d\\xe9j\\xe0/', exact: true });
  assert.match((await folder.getAttribute('title')) ?? '', /shown as \\xNN.*\(bytes: 64e96ae0\)$/, 'hovering says how the name is written, and its bytes');
  await folder.click();
  await page.getByRole('table', { name: 'Files in /d\\xe9j\\xe0' }).waitFor();
  assert.equal((await page.locator('[aria-label="Folder path"]').getByRole('button').allTextContents()).at(-1), 'd\\xe9j\\xe0', 'the path bar shows the name as listed');
  await page.getByRole('button', { name: 'r\\xe9sum\\xe9.txt', exact: true }).click();
  await page.getByTestId('text-preview').waitFor();
  assert.equal(await page.getByTestId('text-preview').textContent(), LATIN1_TEXT);
  const [file] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download r\\xe9sum\\xe9.txt' }).click()]);
  assert.equal(file.suggestedFilename(), 'r%E9sum%E9.txt', 'the server names it: a byte that is not UTF-8 as %XX');
  assert.equal(await readFile(await file.path(), 'utf8'), LATIN1_TEXT);
  await checkPage(page, 'light', 'restore-files-latin1');
  const tar = await downloaded(page, () => page.getByRole('link', { name: 'Download this folder as tar' }).click());
  const out = join(dir, 'tar-latin1');
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'folder.tar'), tar);
  await run('tar', ['--warning=no-unknown-keyword', '-xf', 'folder.tar'], { cwd: out });
  assert.equal(await readFile(bytePath(out, LATIN1_FOLDER, LATIN1_FILE), 'utf8'), LATIN1_TEXT, 'GNU tar writes the names\' bytes');
});

test('instant recovery from the wizard: the NBD URI it shows answers nbdinfo, and stop ends it', async () => {
  const page = adminPage;
  await nav('Restore')(page);
  await settled(page, 'Restore');
  await page.getByRole('list', { name: 'VMs' }).getByRole('button', { name: /^fileserver/ }).click();
  await page.getByRole('list', { name: /^Restore points on / }).getByRole('button').first().click();
  await page.getByRole('button', { name: 'Instant recovery' }).click();
  await page.getByRole('button', { name: 'Start instant recovery' }).click();
  const uri = page.getByTestId('nbd-uri').first();
  await uri.waitFor({ timeout: 30_000 });
  const text = ((await uri.textContent()) ?? '').trim();
  assert.match(text, /^nbd:\/\/127\.0\.0\.1:\d+\/disk0$/);
  assert.match((await page.getByTestId('qemu-command').textContent()) ?? '', /^qemu-system-x86_64 .*nbd:\/\/127\.0\.0\.1:\d+\/disk0/);
  const info = await run('nbdinfo', ['--size', text]);
  assert.equal(Number(info.stdout.trim()), FILES_DISK_BYTES);
  await page.getByText(/^Serving for \d+ min$/).waitFor();
  await checkPage(page, 'light', 'instant-recovery');
  await page.getByRole('button', { name: 'Stop instant recovery' }).click();
  await page.getByText('Stopped.').waitFor({ timeout: 20_000 });
  await assert.rejects(run('nbdinfo', ['--size', text], { timeout: 10_000 }), 'the export is gone');
});

test('repository health: verify now, then its result; a dry-run prune says what it would free', async () => {
  const page = adminPage;
  await nav('Repository health')(page);
  await settled(page, 'Repository health');
  const main = page.getByTestId('health-main');
  await main.getByText('Never verified by this server.').waitFor();
  await main.getByRole('button', { name: 'Verify now' }).click();
  await settled(page, /^Task [0-9a-f]{8}$/);
  await page.locator('[data-status="succeeded"]').waitFor({ timeout: 60_000 });
  await nav('Repository health')(page);
  await settled(page, 'Repository health');
  await main.getByTestId('Last verification').getByText(/no errors were found/).waitFor();
  await main.getByRole('button', { name: 'What would prune free?' }).click();
  await settled(page, /^Task [0-9a-f]{8}$/);
  await page.locator('[data-status="succeeded"]').waitFor({ timeout: 60_000 });
  await nav('Repository health')(page);
  await settled(page, 'Repository health');
  await main.getByTestId('Last prune').getByText(/bytes would be freed/).waitFor();
  // The tape catalog: web1's snapshot on the tape written before the server started; the other repository never had one.
  const catalog = main.getByRole('table', { name: 'Tape catalog of main' });
  await catalog.waitFor();
  const rows = catalog.locator('tbody tr');
  assert.equal(await rows.count(), 1);
  const cells = (await rows.first().locator('td').allTextContents()).map((c) => c.trim());
  assert.equal(cells[0], 'web1');
  assert.equal(cells[3], `#1 ${join(dir, TAPE)}`);
  assert.equal(cells[5], 'yes');
  const entry = (await api(page, 'GET', '/api/v1/repositories/main/tape-catalog')).json.entries[0] as { snapshot: string; tapeSet: string };
  assert.equal(entry.snapshot, snapshotId);
  assert.equal(cells[2], entry.tapeSet.slice(0, 8));
  await rows.first().getByRole('link').click();
  await settled(page, `Snapshot ${snapshotId.slice(0, 12)}`);
  // The snapshot's own records say the same: on that tape.
  await page.getByTestId('snapshot-tapes').getByText(`#1 ${join(dir, TAPE)}`, { exact: false }).waitFor();
  assert.match((await page.getByTestId('snapshot-tapes').textContent()) ?? '', new RegExp(`Tape set ${entry.tapeSet.slice(0, 8)}, written `));
  await page.getByTestId('snapshot-test-restore').getByText('Never test-restored.').waitFor();
  await checkPage(page, 'light', 'snapshot-records');
  await nav('Repository health')(page);
  await settled(page, 'Repository health');
  await page.getByTestId('health-archive').getByText('No snapshot of this repository was ever written to tape').waitFor();
  await checkPage(page, 'light', 'health');
  const dark = await newContext('dark', await admin.storageState());
  try {
    await dark.page.goto('/health');
    await settled(dark.page, 'Repository health');
    await dark.page.getByRole('table', { name: 'Tape catalog of main' }).waitFor();
    await checkPage(dark.page, 'dark', 'health-tape-catalog');
  } finally {
    await dark.context.close();
  }
});

/** Opens the wizard on `vm`'s newest restore point and picks `action`. */
async function wizardAction(page: Page, vm: string, action: string): Promise<void> {
  await nav('Restore')(page);
  await settled(page, 'Restore');
  await page.getByRole('list', { name: 'VMs' }).getByRole('button', { name: new RegExp(`^${vm}`) }).click();
  await page.getByRole('list', { name: /^Restore points on / }).getByRole('button').first().click();
  await page.getByRole('button', { name: action }).click();
}

/** Follows the "its task page" link of a started restore to the task's end; returns its status. */
async function followTask(page: Page): Promise<string> {
  await page.getByTestId('restore-started').getByRole('link', { name: 'its task page' }).click();
  await settled(page, /^Task [0-9a-f]{8}$/);
  const ended = page.locator('[data-status="succeeded"], [data-status="failed"]').first();
  await ended.waitFor({ timeout: 90_000 });
  return (await ended.getAttribute('data-status')) ?? '';
}

test('restore a snapshot\'s disk to a folder in qcow2: equal to the source by qemu-img compare; a refused target and a failed restore say why', async () => {
  const page = adminPage;
  await wizardAction(page, 'web1', 'Restore the disks to a path');
  const form = page.getByRole('form', { name: 'Restore the disks' });
  // Outside the allowed targets: the server's refusal, on the page.
  await form.getByLabel('Folder on the server').fill('/etc/coffer-e2e.qcow2');
  await form.getByRole('button', { name: 'Restore the disks' }).click();
  await form.getByRole('alert').getByText(/restores may only write inside/).waitFor();
  await checkPage(page, 'light', 'restore-disks-refused');

  const out = join(dataDir, 'restores', 'web1.qcow2');
  await form.getByLabel('Folder on the server').fill(out);
  assert.equal(await form.getByLabel('Disk format').inputValue(), 'qcow2 (QEMU, KVM, Proxmox)');
  await form.getByRole('button', { name: 'Restore the disks' }).click();
  assert.equal(await followTask(page), 'succeeded');
  assert.match((await page.getByTestId('task-summary').textContent()) ?? '', /^restored 1 disk\(s\) of web1 .* as qcow2$/);
  await checkPage(page, 'light', 'restore-disks-done');
  assert.equal((await run('qemu-img', ['info', '--output=json', out])).stdout.includes('"format": "qcow2"'), true);
  await run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', webDisk, out]); // exit 0: identical

  // The same target again without "Replace files already there": the restore fails, and its task says why.
  await wizardAction(page, 'web1', 'Restore the disks to a path');
  await page.getByRole('form', { name: 'Restore the disks' }).getByLabel('Folder on the server').fill(out);
  await page.getByRole('form', { name: 'Restore the disks' }).getByRole('button', { name: 'Restore the disks' }).click();
  assert.equal(await followTask(page), 'failed');
  assert.match((await page.getByTestId('task-error').textContent()) ?? '', /exists/);
  await checkPage(page, 'light', 'restore-failed');
});

test('clone as a new VM: a new name, UUID and MAC in a libvirt definition the real libvirt accepts, its disk the restored one', async () => {
  const page = adminPage;
  await wizardAction(page, 'app1', 'Clone as a new VM');
  const form = page.getByRole('form', { name: 'Clone as a new VM' });
  const folder = join(dataDir, 'restores', 'app1-clone');
  await form.getByLabel('Folder on the server').fill(folder);
  await form.getByLabel("New VM's name").fill('app1-clone');
  await form.getByRole('button', { name: 'Clone as a new VM' }).click();
  assert.equal(await followTask(page), 'succeeded');
  assert.match((await page.getByTestId('task-summary').textContent()) ?? '', /^restored app1 as app1-clone \(1 disk\(s\)\)/);
  const clone = page.getByRole('table', { name: 'The clone' });
  const shown = Object.fromEntries(await clone.locator('tr').evaluateAll((rows) => rows.map((r) => [r.querySelector('th')?.textContent ?? '', r.querySelector('td')?.textContent ?? ''])));
  const definition = join(folder, 'app1-clone.xml');
  assert.equal(shown.name, 'app1-clone');
  assert.equal(shown.definition, definition);
  await checkPage(page, 'light', 'clone-done');

  // The real libvirt (test driver) defines it; its name, UUID, disk and MAC are the clone's own.
  const virsh = await run('virsh', ['-c', 'test:///default', `define ${definition} ; dominfo app1-clone ; domblklist app1-clone ; domiflist app1-clone`], { timeout: 60_000 });
  assert.match(virsh.stdout, /Name:\s+app1-clone/);
  assert.match(virsh.stdout, new RegExp(`UUID:\\s+${shown.uuid as string}`));
  const originalUuid = /<uuid>([^<]+)<\/uuid>/.exec(appXml)?.[1];
  assert.ok(originalUuid !== undefined && originalUuid !== shown.uuid, 'a new UUID');
  const disk = join(folder, 'app1-clone-vda.qcow2');
  assert.ok(virsh.stdout.includes(disk), virsh.stdout);
  for (const mac of appXml.matchAll(/<mac address='([^']+)'/g)) assert.ok(!virsh.stdout.includes(mac[1] as string), `the original MAC ${mac[1]} is not reused`);
  await run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', appDisk, disk]);
});

test('tasks: Cancel on a running task\'s page stops it (an instant recovery ends, having served so long), and its NBD export is gone', async () => {
  const page = adminPage;
  // Instant recovery serves until it is stopped: a task that is surely still running when the button is pressed.
  const started = await api(page, 'POST', `/api/v1/repositories/main/snapshots/${snapshotId}/instant-recovery`, {});
  assert.equal(started.status, 202, JSON.stringify(started.json));
  await page.goto(`/tasks/${started.json.id as string}`);
  await settled(page, `Task ${(started.json.id as string).slice(0, 8)}`);
  await page.locator('[data-status="running"]').first().waitFor({ timeout: 30_000 });
  let uri: string | undefined;
  for (const deadline = Date.now() + 30_000; uri === undefined && Date.now() < deadline; ) {
    const task = (await api(page, 'GET', `/api/v1/tasks/${started.json.id as string}`)).json as { report?: { detail?: { exports?: { uri: string }[] } } };
    uri = task.report?.detail?.exports?.[0]?.uri;
    if (uri === undefined) await page.waitForTimeout(250); // polling the API for the export, with the deadline above
  }
  assert.ok(uri !== undefined, 'the export is served');
  await run('nbdinfo', ['--size', uri]);
  // The dashboard's "Running now" lists it, with its progress, linked to its page.
  await page.goto('/');
  await settled(page, 'Dashboard');
  const running = page.getByTestId('running').getByTestId('running-task');
  await running.getByRole('link', { name: 'instant-recovery web1' }).waitFor();
  await running.getByRole('progressbar', { includeHidden: true }).first().waitFor({ state: 'attached' }); // (at 0 % its bar has no width)
  assert.match((await running.getByTestId('progress-percent').textContent()) ?? '', /^\d+%$/);
  await checkPage(page, 'light', 'dashboard-running');
  await running.getByRole('link', { name: 'instant-recovery web1' }).click();
  await settled(page, `Task ${(started.json.id as string).slice(0, 8)}`);
  await page.getByRole('button', { name: 'Cancel this task' }).click();
  // Instant recovery's stop is its cancel: it ends with its report ("served for N s"), not as an error.
  await page.locator('[data-status="succeeded"], [data-status="cancelled"]').first().waitFor({ timeout: 30_000 });
  await page.getByTestId('task-summary').getByText(/^served for \d+ s snapshot /).waitFor();
  // The button goes once the page's copy of the task has ended (the status and the summary may come first, from the events stream).
  await page.getByRole('button', { name: 'Cancel this task' }).waitFor({ state: 'detached', timeout: 30_000 });
  await checkPage(page, 'light', 'task-cancelled');
  await assert.rejects(run('nbdinfo', ['--size', uri], { timeout: 10_000 }), 'the export is gone');
});

test('damage: a chunk removed from the archive repository; Verify now fails and the health page shows the damage and the snapshot it touches', async () => {
  const page = adminPage;
  const chunkDirs = await readdir(join(dir, 'archive', 'chunks'));
  const first = chunkDirs.sort()[0] as string;
  const chunk = ((await readdir(join(dir, 'archive', 'chunks', first))).sort()[0]) as string;
  await rm(join(dir, 'archive', 'chunks', first, chunk));
  await nav('Repository health')(page);
  await settled(page, 'Repository health');
  const archive = page.getByTestId('health-archive');
  await archive.getByRole('button', { name: 'Verify now' }).click();
  await settled(page, /^Task [0-9a-f]{8}$/);
  await page.locator('[data-status="failed"]').first().waitFor({ timeout: 60_000 });
  assert.match((await page.getByTestId('task-error').textContent()) ?? '', /E_VERIFY_FAILED.*1 damaged object/);
  await nav('Repository health')(page);
  await settled(page, 'Repository health');
  const damage = archive.getByTestId('Last verification').getByRole('alert');
  await damage.getByText('Damage found (1)').waitFor();
  await checkPage(page, 'light', 'health-damage');
  assert.match((await damage.getByTestId('damage-touches').textContent()) ?? '', /^app1, snapshot [0-9a-f]{12} of .*, disk vda: bytes [\d.]+ [KMG]?i?B to [\d.]+ [KMG]?i?B/, 'the snapshot, disk and byte range it touches');
  await damage.getByRole('link').first().click();
  await settled(page, /^Snapshot [0-9a-f]{12}$/);
  await page.getByText('VM app1', { exact: false }).first().waitFor();
});

test('sync to an offsite repository: Sync now copies one VM\'s snapshots, and both repositories\' cards show the sync', async () => {
  const page = adminPage;
  await nav('Repository health')(page);
  await settled(page, 'Repository health');
  const main = page.getByTestId('health-main');
  await main.getByTestId('Last sync').getByText('Never synced from or to another repository by this server.').waitFor();
  const inMain = (await api(page, 'GET', '/api/v1/repositories/main/snapshots?vm=web1&limit=500')).json.items.length as number;
  assert.ok(inMain > 0);
  await main.getByLabel('Copy to').selectOption('archive');
  await main.getByLabel('Only this VM (empty: all)').fill('web1');
  await main.getByRole('button', { name: 'Sync now' }).click();
  await settled(page, /^Task [0-9a-f]{8}$/);
  await page.locator('[data-status="succeeded"]').first().waitFor({ timeout: 60_000 });
  await nav('Repository health')(page);
  await settled(page, 'Repository health');
  // The source's card and the offsite copy's card say the same: what went where.
  const said = new RegExp(`^main → archive: ${inMain} snapshot\\(s\\) copied, 0 already there, 0 failed`);
  for (const repo of ['main', 'archive']) await page.getByTestId(`health-${repo}`).getByTestId('Last sync').getByText(said).waitFor();
  const copied = await api(page, 'GET', '/api/v1/repositories/archive/snapshots?vm=web1&limit=500');
  assert.equal(copied.json.items.length, inMain, JSON.stringify(copied.json));
  await checkPage(page, 'light', 'health-synced');
});

test('the jobs editor previews the selection, the schedule and the retention, and saves through the config API with its version', async () => {
  const page = adminPage;
  await nav('Jobs')(page);
  await settled(page, 'Jobs');
  await page.getByRole('table', { name: 'Backup jobs' }).getByRole('link', { name: 'nightly' }).click();
  await settled(page, 'Job nightly');
  await page.getByRole('button', { name: 'Edit the job' }).click();
  const editor = page.getByRole('region', { name: 'Edit the job' });
  await editor.getByText('Editing configuration version').waitFor();
  const selection = editor.getByTestId('selection-preview');
  await selection.getByText('Matches now (2):').waitFor();
  await editor.getByLabel('VM names').fill('db1');
  await selection.getByText('Matches now (3):').waitFor();
  await editor.getByRole('textbox', { name: /^Schedule/ }).fill('*-*-* 03:30');
  await editor.getByLabel('Time zone').fill('Asia/Tokyo');
  await editor.getByTestId('schedule-preview').getByText(/03:30$/).first().waitFor();
  assert.equal(await editor.getByTestId('schedule-preview').getByRole('listitem').count(), 5);
  // Window and limit: the dashboard's forecast and the timeline read the window from here.
  await editor.getByLabel('Window starts').fill('22:00');
  await editor.getByLabel('Window ends').fill('05:30');
  await editor.getByLabel('VMs at once').fill('2');
  await editor.getByLabel('keep-last').fill('1');
  // web1 has two snapshots (the set-up's and the run's): the newer stays, the older goes.
  await editor.getByTestId('retention-preview').getByText('web1: keeps 1, removes 1').waitFor();
  await checkPage(page, 'light', 'job-editor');

  // Someone else changes the configuration meanwhile: the save is refused, not lost.
  const current = await api(page, 'GET', '/api/v1/config');
  const bumped = await api(page, 'PUT', '/api/v1/config', { text: `${current.json.text as string}\n# touched by another admin\n`, comment: 'meanwhile', expectedVersion: current.json.version });
  assert.equal(bumped.status, 200);
  await editor.getByRole('button', { name: 'Save the job' }).click();
  await editor.getByText('The configuration has been read again').waitFor();
  await editor.getByText(`Editing configuration version ${bumped.json.version as number}`).waitFor();
  await editor.getByRole('button', { name: 'Save the job' }).click();
  await editor.getByTestId('job-saved').getByText(`Saved: the configuration is now version ${(bumped.json.version as number) + 1}.`).waitFor();

  const job = await api(page, 'GET', '/api/v1/jobs/nightly');
  assert.deepEqual([job.json.schedule, job.json.timezone, job.json.retention, job.json.select], ['*-*-* 03:30', 'Asia/Tokyo', { 'keep-last': 1 }, { names: ['db1'], tags: ['web'] }]);
  assert.deepEqual([job.json.window, job.json.limits], [{ start: '22:00', end: '05:30' }, { concurrent: 2 }]);
  // The job's page shows the window it now has.
  await page.reload();
  await settled(page, 'Job nightly');
  await page.getByRole('region', { name: 'Selection' }).getByText('Window: 22:00–05:30').waitFor();
  await page.getByRole('region', { name: 'Selection' }).getByText('At most 2 of its VMs at once').waitFor();
  const text = (await api(page, 'GET', '/api/v1/config')).json.text as string;
  assert.match(text, /# touched by another admin/, 'the other edit is kept');
});

test('a new API token\'s secret is shown once, and it works', async () => {
  const page = adminPage;
  await nav('API tokens')(page);
  await settled(page, 'API tokens');
  await page.getByLabel('Name').fill('nightly-report');
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = /coffer_\S+/.exec((await page.getByTestId('token-secret').textContent()) ?? '')?.[0];
  assert.ok(secret !== undefined);
  const me = await server.request('GET', '/api/v1/auth/me', { token: secret.replace(/Copy$/, '') });
  assert.equal(me.status, 200);
  assert.equal(me.json.user, 'admin');
  await nav('Dashboard')(page);
  await settled(page, 'Dashboard');
  await nav('API tokens')(page);
  await settled(page, 'API tokens');
  await page.getByRole('table', { name: 'API tokens' }).getByText('nightly-report').waitFor();
  assert.equal(await page.getByTestId('token-secret').count(), 0, 'the secret is not shown again');
});

test('a lost session returns to the login page, and logging in returns to where the user was', async () => {
  const { context, page } = await newContext('light');
  try {
    await page.goto('/');
    await logIn(page, 'admin', ADMIN_PASSWORD);
    await settled(page, 'Dashboard');
    const csrf = await page.evaluate(async () => ((await (await fetch('/api/v1/auth/me')).json()) as { csrfToken: string }).csrfToken);
    const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    assert.equal((await server.request('POST', '/api/v1/auth/logout', { cookie, csrf })).status, 204);

    await nav('Jobs')(page);
    await page.waitForURL(/\/login\?expired=1&next=%2Fjobs$/);
    await page.getByText('Your session has ended').waitFor();
    await logIn(page, 'admin', ADMIN_PASSWORD);
    await settled(page, 'Jobs');
    assert.equal(new URL(page.url()).pathname, '/jobs');
  } finally {
    await context.close();
  }
});

test('a guest agent\'s file snapshot in the wizard: its files browsed (they open at once with their owners, a file previews and downloads equal) or restored to a folder on the server (proposed inside the allowed targets, refusals shown, the task\'s figures, the bytes on disk)', async () => {
  const page = adminPage;
  // The agent's VM, added as an administrator adds one, and its backup as the agent writes it: a file backup named after the VM.
  const src = join(dir, 'agent-files');
  const motd = 'Written inside the guest, backed up by its agent.\n';
  await mkdir(join(src, 'etc'), { recursive: true });
  await writeFile(join(src, 'etc', 'motd'), motd);
  const id = (JSON.parse(await coffer(['backup', '-r', join(dir, 'repo'), '--password-file', join(dir, 'repo.pass'), '--files', src, '--host', 'guest1-files', '--json'])) as { id: string }).id;
  const current = await api(page, 'GET', '/api/v1/config');
  const vm = `vms:\n  - name: guest1-files\n    host: hv2\n    source: { agent: guest1, files: { paths: [${src}] } }\n`;
  const put = await api(page, 'PUT', '/api/v1/config', { text: (current.json.text as string).replace('vms:\n', vm), comment: 'e2e: an agent', expectedVersion: current.json.version });
  assert.equal(put.status, 200, JSON.stringify(put.json));
  assert.equal((await api(page, 'GET', `/api/v1/repositories/main/snapshots/${id}`)).status, 200, 'the server learns of the CLI\'s backup');

  await nav('Restore')(page);
  await settled(page, 'Restore');
  // Searched by name, as a user finds one VM among many (and a list read in the last 15 s, before the VM was added, is not what is shown).
  await page.getByLabel('Which VM?').fill('guest1');
  await page.getByRole('list', { name: 'VMs' }).getByRole('button', { name: /^guest1-files/ }).click();
  await page.getByRole('list', { name: /^Restore points on / }).getByRole('button').first().click();
  const actions = page.getByRole('list', { name: 'What to restore' });
  await actions.getByRole('button', { name: /^Browse and download files/ }).waitFor();
  assert.deepEqual(await actions.getByRole('listitem').locator('p:first-child').allTextContents(), ['Browse and download files', 'Restore the files to a folder on the server'], 'no instant recovery, disks or clone for a snapshot without disks');
  await actions.getByRole('button', { name: /^Browse and download files/ }).click();
  // Its one volume, files, is open: the folders above the paths backed up lead to them.
  await page.getByRole('group', { name: 'Volumes' }).getByRole('button', { name: /^files · coffer-files/, pressed: true }).waitFor();
  for (const folder of [...src.split('/').filter(Boolean), 'etc']) await page.getByRole('button', { name: `Open ${folder}/`, exact: true }).click();
  const table = page.getByRole('table', { name: `Files in ${src}/etc` });
  await table.waitFor();
  assert.deepEqual(await table.getByRole('columnheader').allTextContents(), ['Name', 'Owner', 'Size', 'Modified']);
  assert.match((await table.getByRole('row', { name: /^motd/ }).textContent()) ?? '', new RegExp(`^motd${userInfo().username}:\\w+`), 'the owner by name');
  await page.getByRole('button', { name: 'motd' }).click();
  assert.equal(await page.getByTestId('text-preview').textContent(), motd);
  assert.equal((await downloaded(page, () => page.getByRole('link', { name: 'Download motd' }).click())).toString('utf8'), motd);
  await checkPage(page, 'light', 'restore-files-agent');

  // Back to "what", and its files written back into a folder on the server: the one proposed, inside the allowed targets.
  await page.getByRole('button', { name: /^What to restore/ }).click();
  await actions.getByRole('button', { name: /^Restore the files to a folder on the server/ }).click();
  const form = page.getByRole('form', { name: 'Restore the files' });
  const folder = form.getByLabel('Folder on the server');
  const proposed = join(dataDir, 'restores', `guest1-files-${id.slice(0, 8)}`);
  await page.waitForFunction((input) => (input as unknown as { value: string }).value !== '', await folder.elementHandle());
  assert.equal(await folder.inputValue(), proposed);
  // The server's refusals, as they come: outside the allowed targets (403), not an absolute path (400).
  for (const [to, refusal] of [['/etc/coffer-e2e-files', /restores may only write inside/], ['restores/files', /^code E_VALIDATION$/]] as const) {
    await folder.fill(to);
    await form.getByRole('button', { name: 'Restore the files' }).click();
    await form.getByRole('alert').getByText(refusal).waitFor();
  }
  await folder.fill(proposed);
  await form.getByRole('button', { name: 'Restore the files' }).click();
  assert.equal(await followTask(page), 'succeeded');
  assert.match((await page.getByTestId('task-summary').textContent()) ?? '', new RegExp(`^restored 1 files \\(${motd.length} bytes\\), \\d+ folders of guest1-files .* into ${proposed}$`));
  const figures = page.getByRole('table', { name: 'The restored files' });
  assert.equal(await figures.getByRole('row', { name: /^Files/ }).getByRole('cell').textContent(), '1');
  assert.equal(await figures.getByRole('row', { name: /^Restored into/ }).getByRole('cell').textContent(), proposed);
  await checkPage(page, 'light', 'restore-files-to-folder-done');
  // Its paths kept below the folder, its bytes as backed up.
  assert.equal(await readFile(join(proposed, src, 'etc', 'motd'), 'utf8'), motd);
});

test('a snapshot\'s page compares it with the one before: the agent\'s next file backup shows exactly the paths changed, in restic\'s letters', async () => {
  const page = adminPage;
  const src = join(dir, 'agent-files');
  await writeFile(join(src, 'etc', 'motd'), 'Changed since the last backup.\n');
  await writeFile(join(src, 'etc', 'hostname'), 'guest1\n');
  const id = (JSON.parse(await coffer(['backup', '-r', join(dir, 'repo'), '--password-file', join(dir, 'repo.pass'), '--files', src, '--host', 'guest1-files', '--json'])) as { id: string }).id;
  await page.goto(`/repositories/main/snapshots/${id}`);
  await settled(page, /^Snapshot [0-9a-f]{12}$/);
  const card = page.getByRole('region', { name: 'Compare with another snapshot' });
  assert.match((await card.getByLabel('What changed since').locator('option:checked').textContent()) ?? '', / \(its parent\)$/, 'the backup it was taken on, proposed');
  await card.getByRole('button', { name: 'Compare' }).click();
  await card.getByTestId('diff-pager').waitFor();
  assert.deepEqual(await card.getByTestId('diff-change').allTextContents(), [`+${src}/etc/hostname7 B`, `M${src}/etc/motd31 B`]);
  assert.match((await card.getByTestId('diff-counts').textContent()) ?? '', /^Files: 1 added, 0 removed, 1 modified, 0 type changed, 0 metadata only/);
  await checkPage(page, 'light', 'snapshot-compare');
});

test('a RestoreOperator sees no admin page or control, and the API refuses the action anyway', async () => {
  const created = await adminPage.evaluate(async (password) => {
    const { csrfToken } = (await (await fetch('/api/v1/auth/me')).json()) as { csrfToken: string };
    const response = await fetch('/api/v1/users', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrfToken },
      body: JSON.stringify({ name: 'helpdesk', password, grants: [{ role: 'RestoreOperator', path: '/' }], mustChangePassword: false }),
    });
    return response.status;
  }, HELPDESK_PASSWORD);
  assert.equal(created, 201);

  const { context, page } = await newContext('light');
  try {
    await page.goto('/');
    await logIn(page, 'helpdesk', HELPDESK_PASSWORD);
    await settled(page, 'Dashboard');
    const navigation = page.getByRole('navigation', { name: 'Main navigation' });
    assert.deepEqual(await navigation.getByRole('link').allTextContents(), ['Dashboard', 'VMs and restore points', 'Restore', 'Backup window', 'Tasks', 'Jobs', 'Schedules', 'Storage over time', 'Repository health', 'Workers', 'API tokens']);

    await page.goto('/users');
    await settled(page, 'Users and grants');
    await page.getByRole('alert').getByText('Not allowed').waitFor();
    assert.equal(await page.getByRole('button', { name: /Delete/ }).count(), 0);
    assert.equal(await page.getByRole('region', { name: 'Add a user' }).count(), 0);
    await checkPage(page, 'light', 'users-as-restore-operator');
    // A way on from the dead end.
    await page.getByRole('alert').getByRole('link', { name: 'back to the dashboard' }).click();
    await settled(page, 'Dashboard');

    const refused = await page.evaluate(async () => {
      const { csrfToken } = (await (await fetch('/api/v1/auth/me')).json()) as { csrfToken: string };
      const response = await fetch('/api/v1/users/admin', { method: 'DELETE', headers: { 'x-csrf-token': csrfToken } });
      return { status: response.status, body: (await response.json()) as { code: string } };
    });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.code, 'E_FORBIDDEN');

    // Repository health: no verify or prune control for a restore-only role, and the API refuses the prune.
    await page.goto('/health');
    await settled(page, 'Repository health');
    await page.getByTestId('health-main').waitFor();
    assert.equal(await page.getByRole('button', { name: /Verify now|What would prune free|Sync now/ }).count(), 0);
    const prune = await api(page, 'POST', '/api/v1/repositories/main/prune', { dryRun: false });
    assert.equal(prune.status, 403);
    assert.equal(prune.json.code, 'E_FORBIDDEN');
    await checkPage(page, 'light', 'health-as-restore-operator');
  } finally {
    await context.close();
  }
});

test('four eyes: an admin\'s delete and a legal hold lifted on a snapshot\'s page wait for a second admin, who approves them on the Approvals page; the audit log, filtered, shows both steps', async () => {
  const page = adminPage;
  const current = await api(page, 'GET', '/api/v1/config');
  const put = await api(page, 'PUT', '/api/v1/config', { text: (current.json.text as string).replace('four-eyes: false', 'four-eyes: true'), comment: 'e2e: four eyes', expectedVersion: current.json.version });
  assert.equal(put.status, 200, JSON.stringify(put.json));

  // A legal hold put on web1's snapshot from its page applies at once; lifting it waits for a second admin (below).
  await page.goto(`/repositories/main/snapshots/${snapshotId}`);
  await settled(page, `Snapshot ${snapshotId.slice(0, 12)}`);
  const tags = page.getByTestId('snapshot-tags');
  await page.getByText(/^Four eyes is on: removing a tag waits for a second administrator's approval/).waitFor();
  await tags.getByLabel('New tag').fill('legal-hold');
  await tags.getByRole('button', { name: 'Add tag' }).click();
  const lift = tags.getByRole('button', { name: "Remove tag legal-hold (waits for a second administrator's approval)" });
  await lift.waitFor();
  assert.ok(((await api(page, 'GET', `/api/v1/repositories/main/snapshots/${snapshotId}`)).json.tags as string[]).includes('legal-hold'));
  assert.deepEqual(((await api(page, 'GET', '/api/v1/repositories/main/snapshots?tag=legal-hold')).json.items as Array<{ id: string }>).map((s) => s.id), [snapshotId], 'listed at once');
  await lift.click();
  await page.getByText("Removing legal-hold waits for a second administrator's approval (Approvals).").waitFor();
  assert.ok(((await api(page, 'GET', `/api/v1/repositories/main/snapshots/${snapshotId}`)).json.tags as string[]).includes('legal-hold'), 'kept until approved');
  await checkPage(page, 'light', 'snapshot-tags-four-eyes');

  await nav('Users and grants')(page);
  await settled(page, 'Users and grants');
  // admin is the only administrator on / yet: removing that grant would lock everyone out, and
  // the server refuses it in words, shown on the page; the grant stays.
  await page.getByRole('button', { name: 'Remove Admin on / from admin' }).click();
  const lastAdmin = page.getByRole('alert').filter({ hasText: 'Changing the grants' });
  await lastAdmin.getByText(/the last administrator on \/ cannot lose Admin on \/.*give another user Admin on \/ first/).waitFor();
  await lastAdmin.getByText('code E_LAST_ADMIN').waitFor();
  assert.deepEqual((await api(page, 'GET', '/api/v1/users/admin')).json.grants, [{ role: 'Admin', path: '/' }]);
  // Grants changed on the page: helpdesk gets Operator on /jobs, then loses RestoreOperator on /.
  const helpdeskRow = page.getByRole('table', { name: 'Users' }).getByRole('row').filter({ hasText: /^helpdesk/ });
  const addGrant = async (path: string) => {
    await helpdeskRow.getByRole('button', { name: 'Add a grant to helpdesk' }).click();
    await helpdeskRow.getByLabel('Role', { exact: true }).click();
    await page.getByRole('option', { name: 'Operator', exact: true }).click();
    await helpdeskRow.getByLabel('Path', { exact: true }).fill(path);
    await helpdeskRow.getByRole('button', { name: 'Add', exact: true }).click();
  };
  // A path that names no object: the server's refusal, in words, on the page.
  await addGrant('/jobs');
  await page.getByRole('alert').filter({ hasText: 'Changing the grants' }).getByText('code E_VALIDATION').waitFor();
  await addGrant('/jobs/nightly');
  await helpdeskRow.getByText('Operator on /jobs/nightly').waitFor();
  // Shown as written: a path is case-sensitive (Mantine's badges are uppercase by default).
  const transform = (locator: ReturnType<Page['getByText']>) => locator.evaluate((e) => (globalThis as unknown as { getComputedStyle(x: unknown): { textTransform: string } }).getComputedStyle(e).textTransform);
  assert.equal(await transform(helpdeskRow.getByText('Operator on /jobs/nightly')), 'none');
  await helpdeskRow.getByRole('button', { name: 'Remove RestoreOperator on / from helpdesk' }).click();
  await helpdeskRow.getByText('RestoreOperator on /', { exact: true }).waitFor({ state: 'detached' });
  assert.deepEqual((await api(page, 'GET', '/api/v1/users/helpdesk')).json.grants, [{ role: 'Operator', path: '/jobs/nightly' }]);
  await checkPage(page, 'light', 'users-grants');
  // A second administrator, to decide on the deletion below.
  const made = await api(page, 'POST', '/api/v1/users', { name: 'admin2', password: ADMIN2_PASSWORD, grants: [{ role: 'Admin', path: '/' }], mustChangePassword: false });
  assert.equal(made.status, 201, JSON.stringify(made.json));
  page.once('dialog', (dialog) => void dialog.accept());
  await page.getByRole('button', { name: 'Delete user helpdesk' }).click();
  await page.getByText("Deleting helpdesk waits for a second administrator's approval.").waitFor();
  assert.equal((await api(page, 'GET', '/api/v1/users/helpdesk')).status, 200, 'still there');
  await nav('Approvals')(page);
  await settled(page, 'Approvals');
  const mine = page.getByRole('table', { name: 'Approval requests' });
  await mine.getByRole('row').filter({ hasText: 'helpdesk' }).waitFor();
  assert.equal(await mine.getByRole('button', { name: 'Approve' }).count(), 0, 'the one who asked cannot approve');

  const { context, page: second } = await newContext('dark');
  try {
    await second.goto('/approvals');
    await logIn(second, 'admin2', ADMIN2_PASSWORD);
    await settled(second, 'Approvals');
    const waiting = second.getByRole('table', { name: 'Approval requests' });
    const row = waiting.getByRole('row').filter({ hasText: 'helpdesk' });
    assert.match((await row.textContent()) ?? '', /admin/);
    await checkPage(second, 'dark', 'approvals-waiting');
    const hold = waiting.getByRole('row').filter({ hasText: 'removes legal-hold' });
    await hold.getByRole('button', { name: 'Approve' }).click();
    await hold.waitFor({ state: 'detached' });
    assert.ok(!((await api(second, 'GET', `/api/v1/repositories/main/snapshots/${snapshotId}`)).json.tags as string[]).includes('legal-hold'), 'the hold lifted once approved');
    assert.equal((await api(second, 'GET', '/api/v1/repositories/main/snapshots?tag=legal-hold')).json.items.length, 0);
    await row.getByRole('button', { name: 'Approve' }).click();
    await second.getByText('No request waits for a decision.').waitFor();
    assert.equal((await api(second, 'GET', '/api/v1/users/helpdesk')).status, 404, 'deleted once approved');
    await second.locator('label', { hasText: /^All$/ }).click();
    await waiting.getByRole('row').filter({ hasText: 'helpdesk' }).getByText('approved', { exact: true }).waitFor();

    // The audit log filtered by target: the request (pending, by admin) and the deletion (by admin2).
    await nav('Audit log')(second);
    await settled(second, 'Audit log');
    // All entries (downloads with a snapshot's 64-digit ID as target among them) fit the screen: the details are not pushed off it.
    await second.getByRole('table', { name: 'Audit log entries' }).getByText('files.download').first().waitFor();
    const wide = await second.getByRole('region', { name: 'Audit log entries (scrolls sideways)' }).evaluate((r) => r.scrollWidth - r.clientWidth);
    assert.ok(wide <= 0, `the audit table is ${wide} px wider than the page`);
    const filtered = second.waitForResponse((r) => {
      const url = new URL(r.url());
      return url.pathname === '/api/v1/audit' && url.searchParams.get('target') === '/users/helpdesk' && url.searchParams.get('action') === 'user.delete';
    });
    await second.getByLabel('Target').fill('/users/helpdesk');
    await second.getByLabel('Action').fill('user.delete');
    await filtered;
    const table = second.getByRole('table', { name: 'Audit log entries' });
    // Drawn once the approval's own entry (another target) and helpdesk's creation (another action) are gone.
    await table.getByRole('row').filter({ hasText: /approval\.approve|user\.create/ }).first().waitFor({ state: 'detached' });
    const entries = table.getByRole('row').filter({ hasText: 'user.delete' });
    const texts = await entries.allTextContents();
    assert.equal(texts.length, 2, texts.join('\n'));
    assert.ok(texts.some((t) => t.includes('pending') && t.includes('user:admin')), texts.join('\n'));
    assert.ok(texts.some((t) => t.includes('success')), texts.join('\n'));
    // Details in words, not JSON: the request names its approval.
    assert.ok(texts.some((t) => /approval: \S+/.test(t)), texts.join('\n'));
    assert.ok(texts.every((t) => !t.includes('{"')), texts.join('\n'));
    await checkPage(second, 'dark', 'audit-filtered');
  } finally {
    await context.close();
  }
});

test('when the server dies, the page says so and offers to try again (no blank screen)', async () => {
  const page = adminPage;
  await nav('Audit log')(page);
  await settled(page, 'Audit log');
  await server.stop();
  await page.getByLabel('Who').fill('user:nobody');
  await page.getByRole('alert').getByText('The server does not answer').waitFor({ timeout: 15_000 });
  await page.getByRole('button', { name: 'Try again' }).waitFor();
  await screenshot(page, 'light', 'server-down');
  await admin.close();
  assert.deepEqual(scriptErrors, [], 'no uncaught script error and no CSP refusal in any page');
});
