/**
 * The command line of the QEMU behind a local QMP unix socket, for the VM's stored definition:
 * QMP reports devices, not what the command line said (the CPU model, the accelerator,
 * firmware, chardev and network backends, `-object`s), and a restore as a new VM needs those.
 *
 * Linux facts relied on (proc(5)):
 * - `/proc/net/unix` lists the unix sockets of the network namespace, one per line: `Num
 *   RefCount Protocol Flags Type St Inode Path`; a listening socket has flag `00010000`
 *   (`__SO_ACCEPTCON`) and state `01`. The path is the one given to bind().
 * - `/proc/PID/fd/N` links read `socket:[INODE]` for a socket; `/proc/PID/cmdline` holds the
 *   arguments, each ended by a NUL.
 * Reading another user's fds needs root or the same user: when the process cannot be found,
 * the reason is kept instead (the definition is then QMP's only).
 */
import * as fs from 'node:fs/promises';
import path from 'node:path';

/** The command line found, or why none was. */
export type QemuCommandLine = { pid: number; argv: string[] } | { unavailable: string };

/** Finds the process listening on `socketPath` and reads its command line, secrets redacted. */
export async function qemuCommandLine(socketPath: string, proc = '/proc'): Promise<QemuCommandLine> {
  let table: string;
  try {
    table = await fs.readFile(path.join(proc, 'net/unix'), 'utf8');
  } catch (error) {
    return { unavailable: `${proc}/net/unix cannot be read: ${(error as Error).message}` };
  }
  const wanted = path.resolve(socketPath);
  // The table holds the path QEMU bound, which may name the socket another way (/var/run
  // being a link to /run, a folder reached through a symlink): same file, once resolved.
  const wantedReal = await fs.realpath(wanted).catch(() => wanted);
  const sameSocket = async (where: string): Promise<boolean> =>
    where === wanted || where === wantedReal || ([path.basename(wanted), path.basename(wantedReal)].includes(path.basename(where)) && (await fs.realpath(where).catch(() => where)) === wantedReal);
  const inodes = new Set<string>();
  for (const line of table.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8) continue;
    const [, , , flags, , state, inode] = fields;
    const where = fields.slice(7).join(' ');
    if (state === '01' && (parseInt(flags as string, 16) & 0x10000) !== 0 && (await sameSocket(where))) inodes.add(`socket:[${inode}]`);
  }
  if (inodes.size === 0) return { unavailable: `no process of this host listens on ${wanted} (a QMP monitor reached another way, or in another network namespace)` };
  const pids = (await fs.readdir(proc)).filter((name) => /^\d+$/.test(name));
  // QEMU first: its comm is `qemu-system-…` (or `kvm`); then every other process.
  const comms = await Promise.all(pids.map((pid) => fs.readFile(path.join(proc, pid, 'comm'), 'utf8').catch(() => '')));
  const ordered = [...pids.filter((_, i) => /^(qemu|kvm)/.test(comms[i] ?? '')), ...pids.filter((_, i) => !/^(qemu|kvm)/.test(comms[i] ?? ''))];
  let denied = false;
  for (const pid of ordered) {
    let fds: string[];
    try {
      fds = await fs.readdir(path.join(proc, pid, 'fd'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EACCES') denied = true;
      continue;
    }
    for (const fd of fds) {
      const link = await fs.readlink(path.join(proc, pid, 'fd', fd)).catch(() => '');
      if (!inodes.has(link)) continue;
      const raw = await fs.readFile(path.join(proc, pid, 'cmdline')).catch(() => undefined);
      if (raw === undefined || raw.length === 0) return { unavailable: `the command line of process ${pid} cannot be read` };
      const argv = raw.toString('utf8').split('\0');
      if (argv.at(-1) === '') argv.pop();
      return { pid: Number(pid), argv: redactCommandLine(argv) };
    }
  }
  return { unavailable: `the process listening on ${wanted} was not found${denied ? ' (some processes\' descriptors could not be read: not root?)' : ''}` };
}

/** What a redacted value reads as. */
export const REDACTED = '<redacted>';

/** Option keys whose values are secrets wherever they appear (`password=…`, `file.password=…`). */
const SECRET_KEYS = /^(password|passwd|pass|secret|key|iv|auth-token|token)$/i;

/**
 * The arguments with secret values replaced by {@link REDACTED}: a `secret` object's inline
 * `data=` (and that of `secret_keyring`), and any `password=`-like key of any option, in the
 * `key=value,…` form (QEMU's `,,` escape kept) and in the JSON form (`-object '{…}'`).
 * Values that name a secret (`password-secret=sec0`, `key-secret=…`) are ids, kept.
 */
export function redactCommandLine(argv: readonly string[]): string[] {
  return argv.map((arg) => (arg.startsWith('{') ? redactJson(arg) : redactKeyValues(arg)));
}

/**
 * Secrets inside one value: a URL's user information (`iscsi://user%pass@host`,
 * `https://user:pass@host`), a legacy `rbd:pool/image:key=…` (or `:password=…`) segment, and
 * the JSON of a `json:{…}` pseudo-protocol filename.
 */
function redactValue(value: string, commasDoubled = false): string {
  if (value.startsWith('json:{')) {
    // In a key=value option QEMU's value doubles its commas: undone to parse, redone after.
    const json = commasDoubled ? value.slice(5).replace(/,,/g, ',') : value.slice(5);
    const redacted = redactJson(json);
    return `json:${commasDoubled ? redacted.replace(/,/g, ',,') : redacted}`;
  }
  return value
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, `$1${REDACTED}@`)
    .replace(/:(key|password|passwd|secret)=[^:,]*/gi, `:$1=${REDACTED}`);
}

function redactKeyValues(arg: string): string {
  if (!arg.includes('=')) return redactValue(arg);
  // Split on single commas; `,,` is an escaped comma inside a value.
  const parts = arg.split(/(?<!,),(?!,)/);
  const isSecretObject = parts.some((p) => /^(qom-type=)?secret(_keyring)?$/.test(p));
  return parts
    .map((part) => {
      const eq = part.indexOf('=');
      if (eq < 0) return part;
      const key = part.slice(0, eq);
      const last = key.split('.').at(-1) ?? key;
      if (SECRET_KEYS.test(last) || (isSecretObject && last === 'data')) return `${key}=${REDACTED}`;
      return `${key}=${redactValue(part.slice(eq + 1), true)}`;
    })
    .join(',');
}

function redactJson(arg: string): string {
  let value: unknown;
  try {
    value = JSON.parse(arg);
  } catch {
    return redactKeyValues(arg);
  }
  const walk = (node: unknown, secretObject: boolean): unknown => {
    if (Array.isArray(node)) return node.map((item) => walk(item, secretObject));
    if (node === null || typeof node !== 'object') return node;
    const record = node as Record<string, unknown>;
    const secret = secretObject || record['qom-type'] === 'secret' || record['qom-type'] === 'secret_keyring';
    return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, SECRET_KEYS.test(k) || (secret && k === 'data') ? REDACTED : typeof v === 'string' ? redactValue(v) : walk(v, secret)]));
  };
  return JSON.stringify(walk(value, false));
}
