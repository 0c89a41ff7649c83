/**
 * Debian packages as test material, never installed into the host: a guest kernel and the
 * programs of a test guest's initramfs (busybox, qemu-guest-agent...) come from the archive's
 * .deb files, downloaded once with `apt-get download` and cached with the test disks.
 *
 * The versioned kernel package changes with security updates, so it is resolved through its
 * meta package each time; stale apt lists (a download that 404s) get one `apt-get update`.
 * @example
 * const kernel = await guestKernel();
 * // qemu-system-x86_64 -kernel ${kernel.vmlinuz} -initrd my-initrd.gz -append console=ttyS0
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { cachedFixture, requireTools } from './disks.js';

const execFileAsync = promisify(execFile);

/** The kernel a test guest boots: the cloud flavour boots fastest under TCG (LZ4, few drivers). */
export const GUEST_KERNEL_META_PACKAGE = 'linux-image-cloud-amd64';

/** A guest kernel unpacked from its .deb. */
export interface GuestKernel {
  /** The versioned package, e.g. `linux-image-6.1.0-56-cloud-amd64`. */
  package: string;
  /** Its release, e.g. `6.1.0-56-cloud-amd64` (the modules' folder name). */
  release: string;
  /** The cached kernel image, for `qemu-system-x86_64 -kernel`. */
  vmlinuz: string;
  /** The cached .deb, for {@link unpackDebianPackage} of its modules. */
  deb: string;
}

/** The cloud kernel, downloaded once; its vmlinuz is cached beside it. */
export async function guestKernel(): Promise<GuestKernel> {
  const meta = await aptCache(['depends', GUEST_KERNEL_META_PACKAGE]);
  const pkg = /Depends: (linux-image-[0-9][^\s]*)/.exec(meta)?.[1];
  if (pkg === undefined) throw new Error(`no versioned kernel behind ${GUEST_KERNEL_META_PACKAGE} in the apt lists`);
  const release = pkg.replace(/^linux-image-/, '');
  const deb = await debianPackage(pkg);
  const vmlinuz = await cachedFixture(`vmlinuz-${release}`, { deb: path.basename(deb) }, async (tmp) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-kernel-'));
    try {
      await unpackDebianPackage(deb, dir, [`./boot/vmlinuz-${release}`]);
      await fs.copyFile(path.join(dir, 'boot', `vmlinuz-${release}`), tmp);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
  return { package: pkg, release, vmlinuz, deb };
}

/**
 * The .deb of one package (the candidate version of the apt lists), downloaded once and
 * cached under the fixture folder; returns its path.
 */
export async function debianPackage(name: string): Promise<string> {
  if (!/^[a-z0-9][a-z0-9.+-]+$/.test(name)) throw new RangeError(`bad package name ${JSON.stringify(name)}`);
  const candidate = async () => /Candidate: (\S+)/.exec(await aptCache(['policy', name]))?.[1];
  let version = await candidate();
  if (version === undefined || version === '(none)') {
    await aptUpdateOnce(); // a fresh machine may have no apt lists yet
    version = await candidate();
  }
  if (version === undefined || version === '(none)') throw new Error(`Debian package ${name} is not in the apt lists, even after apt-get update`);
  return cachedFixture(`deb-${name}`, { version }, async (tmp) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-deb-'));
    try {
      await aptDownload(name, dir).catch(async () => {
        await aptUpdateOnce(); // stale lists name a version the archive no longer has
        await aptDownload(name, dir);
      });
      const [file] = (await fs.readdir(dir)).filter((f) => f.endsWith('.deb'));
      if (file === undefined) throw new Error(`apt-get download ${name} left no .deb`);
      await fs.copyFile(path.join(dir, file), tmp);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
}

/**
 * Unpacks a .deb's files into `dir` (its maintainer scripts are not run); `members` (tar
 * paths such as `./usr/bin/qemu-ga` or `./lib/modules/REL/kernel/fs`) limits what is taken.
 */
export async function unpackDebianPackage(deb: string, dir: string, members: string[] = []): Promise<void> {
  await requireTools('dpkg-deb', 'tar');
  await fs.mkdir(dir, { recursive: true });
  const quoted = [deb, dir, ...members].map((s) => `'${s.replace(/'/g, `'\\''`)}'`);
  const [debQ, dirQ, ...membersQ] = quoted;
  await execFileAsync('/bin/sh', ['-c', `dpkg-deb --fsys-tarfile ${debQ} | tar -x -C ${dirQ} ${membersQ.join(' ')}`], { maxBuffer: 16 << 20 });
}

let aptUpdated: Promise<unknown> | undefined;
/** `apt-get update`, at most once per test process. */
function aptUpdateOnce(): Promise<unknown> {
  aptUpdated ??= execFileAsync('apt-get', ['update', '-q'], { maxBuffer: 16 << 20 });
  return aptUpdated;
}

async function aptCache(args: string[]): Promise<string> {
  return (await execFileAsync('apt-cache', args, { env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 16 << 20 })).stdout;
}

async function aptDownload(name: string, dir: string): Promise<void> {
  await execFileAsync('apt-get', ['download', '-q', '-o', 'APT::Sandbox::User=root', name], { cwd: dir, maxBuffer: 16 << 20 });
}
