/**
 * `virsh define` of a clone's domain XML, with a deadline: libvirt checks the definition and
 * registers the domain (it does not start it). `virsh` (Debian package libvirt-clients) is
 * run as `virsh -c URI define FILE`; without a URI, virsh's default connection is used.
 */
import { execFile } from 'node:child_process';
import { CofferError } from '../../errors/index.js';

/** How long virsh may take before it is killed. */
const VIRSH_TIMEOUT_MS = 60_000;

/** Defines the domain in `file`; throws E_TARGET_UNWRITABLE with libvirt's message when refused. */
export async function defineLibvirtDomain(file: string, options: { connect?: string } = {}): Promise<string> {
  const args = [...(options.connect !== undefined ? ['-c', options.connect] : []), 'define', file];
  return new Promise((resolve, reject) => {
    execFile('virsh', args, { timeout: VIRSH_TIMEOUT_MS, killSignal: 'SIGKILL', encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error === null) {
        resolve(stdout.trim());
        return;
      }
      const why = (error as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'virsh is not installed (Debian package libvirt-clients)'
        : error.killed ? `virsh did not answer within ${VIRSH_TIMEOUT_MS / 1000} s` : (stderr.trim().split('\n').filter(Boolean).join(' ') || `virsh exited with ${String(error.code)}`);
      reject(new CofferError('E_TARGET_UNWRITABLE', `virsh define ${file} failed: ${why}`, { subject: { path: file }, cause: error }));
    });
  });
}
