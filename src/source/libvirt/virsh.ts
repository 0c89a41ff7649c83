import { spawn } from 'node:child_process';
import { CofferError } from '../../errors/index.js';

/**
 * Most virsh calls answer in milliseconds; `backup-begin` creates scratch images and bitmaps,
 * `domjobabort` waits for QEMU's jobs to end. A minute covers a loaded host; a daemon that
 * takes longer is treated as hung.
 */
export const VIRSH_TIMEOUT_MS = 60_000;
/** Output beyond this is not libvirt's (a domain XML is kilobytes). */
const MAX_OUTPUT = 16 * 1024 * 1024;

/**
 * `virsh [-c URI] COMMAND …`, one process per call, each with a deadline. virsh prints
 * `error: …` lines on stderr and exits 1 on failure; they become one-line CofferErrors:
 * `E_LIBVIRT_ERROR` (cannot connect, refused), `E_DOMAIN_NOT_FOUND`, `E_TIMEOUT` (killed at
 * the deadline). Safe to share between concurrent calls; holds no connection of its own.
 */
export class Virsh {
  constructor(
    /** The libvirt URI (`qemu:///system`); undefined: virsh's default (LIBVIRT_DEFAULT_URI…). */
    readonly uri: string | undefined,
    private readonly timeoutMs = VIRSH_TIMEOUT_MS,
  ) {}

  /** Runs one command and resolves with its standard output. */
  async run(args: readonly string[]): Promise<string> {
    const argv = [...(this.uri !== undefined ? ['-c', this.uri] : []), ...args];
    const where = this.uri ?? 'the default libvirt URI';
    return new Promise<string>((resolve, reject) => {
      // LC_ALL=C: the messages classified below are libvirt's untranslated ones.
      const child = spawn('virsh', argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
      let stdout = '';
      let stderr = '';
      let tooLong = false;
      child.stdout.setEncoding('utf8').on('data', (text: string) => {
        if (stdout.length + text.length > MAX_OUTPUT) {
          tooLong = true;
          child.kill('SIGKILL');
        } else stdout += text;
      });
      child.stderr.setEncoding('utf8').on('data', (text: string) => {
        if (stderr.length < 64 * 1024) stderr += text;
      });
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, this.timeoutMs);
      child.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(
          error.code === 'ENOENT'
            ? new CofferError('E_LIBVIRT_ERROR', 'virsh is not installed (Debian package libvirt-clients)', { cause: error })
            : new CofferError('E_LIBVIRT_ERROR', `virsh could not be started: ${error.message}`, { cause: error }),
        );
      });
      child.once('close', (code) => {
        clearTimeout(timer);
        const command = `virsh ${args[0] ?? ''}`;
        if (timedOut) return reject(new CofferError('E_TIMEOUT', `${command} on ${where} did not answer within ${this.timeoutMs / 1000} s`));
        if (tooLong) return reject(new CofferError('E_LIBVIRT_ERROR', `${command} printed more than ${MAX_OUTPUT} bytes`));
        if (code === 0) return resolve(stdout);
        reject(virshError(command, where, stderr));
      });
    });
  }
}

/**
 * A long-running virsh (`virsh event --loop`): each line of its standard output goes to
 * `onLine` as it comes; `stop()` kills it (idempotent). `exited` resolves with the reason when
 * it ends on its own (virsh missing, the daemon gone). It is started through util-linux's
 * `setpriv --pdeathsig TERM` (Linux's parent-death signal), so that a Coffer killed with
 * SIGKILL leaves no virsh listening forever.
 */
export function virshStream(virsh: Virsh, args: readonly string[], onLine: (line: string) => void): { stop(): void; exited: Promise<string> } {
  const argv = [...(virsh.uri !== undefined ? ['-c', virsh.uri] : []), ...args];
  const child = spawn('setpriv', ['--pdeathsig', 'TERM', '--', 'virsh', ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
  let pending = '';
  let stderr = '';
  let stopped = false;
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    pending += text;
    let newline: number;
    while ((newline = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      if (!stopped) onLine(line);
    }
    if (pending.length > 1024 * 1024) pending = ''; // not virsh's output: one event is a line
  });
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    if (stderr.length < 64 * 1024) stderr += text;
  });
  const exited = new Promise<string>((resolve) => {
    child.once('error', (error) => resolve(`virsh could not be started: ${error.message}`));
    child.once('close', (code, signal) => resolve(stderr.trim() || `virsh ${args[0] ?? ''} ended (${signal ?? `exit ${code}`})`));
  });
  return {
    stop: () => {
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
    exited,
  };
}

/** The one-line error for a failed call, from virsh's `error: …` lines. */
export function virshError(command: string, where: string, stderr: string): CofferError {
  const lines = stderr
    .split('\n')
    .map((l) => l.replace(/^error:\s*/, '').trim())
    .filter((l) => l !== '');
  const detail = lines.join(': ') || 'no message';
  if (/failed to connect to the hypervisor/i.test(stderr)) return new CofferError('E_LIBVIRT_ERROR', `cannot reach libvirt at ${where}: ${lines.slice(1).join(': ') || detail}`);
  if (/failed to get domain|Domain not found/i.test(stderr)) return new CofferError('E_DOMAIN_NOT_FOUND', `libvirt at ${where} has no such domain: ${detail}`);
  return new CofferError('E_LIBVIRT_ERROR', `${command} failed: ${detail}`);
}

/** True for the error virsh gives when a domain has no backup job (or no job at all). */
export function isNoJobError(error: unknown): boolean {
  return error instanceof CofferError && /no domain backup job|no job is active|job id not found/i.test(error.message);
}

/** True for the error virsh gives about a checkpoint that does not exist. */
export function isNoCheckpointError(error: unknown): boolean {
  return error instanceof CofferError && /no domain checkpoint|checkpoint not found|Domain checkpoint not found/i.test(error.message);
}
