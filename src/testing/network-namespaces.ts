/**
 * Network namespaces for tests whose processes must talk over a real network link (`ip netns`
 * and a veth pair each): the process inside reaches the host side's address only over its
 * veth, and {@link NetworkNamespace.cut} takes the link down (a network partition). Needs root
 * and the iproute2 package; {@link networkNamespacesWork} says whether this machine allows
 * them (a container may not). Addresses: 10.X.N.1 on the host side, .2 inside, /24 per
 * namespace, X one per process (from 100 + pid % 100, the next one no address of the host
 * uses yet: two test files making namespaces at once must not share a subnet). Remove them in
 * `after()`; an `exit` hook removes them too.
 */
import { spawnSync } from 'node:child_process';

export interface NetworkNamespace {
  readonly name: string;
  /** The host side's address, what the process inside connects to. */
  readonly hostAddress: string;
  /** Its own address inside. */
  readonly address: string;
  /** The command prefix that runs a program inside: `ip netns exec NAME`. */
  readonly exec: readonly string[];
  /** Takes the link down (the process inside is cut off), or up again. */
  cut(): void;
  restore(): void;
}

function ip(...args: string[]): { ok: boolean; text: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, text: `${r.stdout ?? ''}${r.stderr ?? r.error?.message ?? ''}` };
}

/** Whether `ip netns add` works here (root, iproute2, a kernel that allows it). */
export function networkNamespacesWork(): boolean {
  const probe = `cfprobe${process.pid}`;
  const added = ip('netns', 'add', probe);
  if (added.ok) ip('netns', 'del', probe);
  return added.ok;
}

/** The second octet of this process's namespaces' addresses, chosen at the first call. */
let octet: number | undefined;

/** 100 + pid % 100, or the next value (wrapping within 100-199) that no IPv4 address of the host is in. */
function networkOctet(): number {
  if (octet !== undefined) return octet;
  const used = ip('-o', '-4', 'addr', 'show').text;
  const start = process.pid % 100;
  octet = 100 + start;
  for (let i = 0; i < 100; i++) {
    const candidate = 100 + ((start + i) % 100);
    if (!used.includes(` 10.${candidate}.`)) {
      octet = candidate;
      break;
    }
  }
  return octet;
}

/** The network all namespaces of this process are in (for trust rules), e.g. 10.142.0.0/16. */
export function namespacesNetwork(): string {
  return `10.${networkOctet()}.0.0/16`;
}

const made: string[] = [];
let hooked = false;

/**
 * Makes namespace number `n` (1..250) of this process, its link up. `defaultRoute`: everything
 * beyond its /24 goes through the host side too, so the process inside reaches every address
 * of the host (another namespace's host-side address, where a shared service listens).
 * @throws Error naming the failing step.
 */
export function createNetworkNamespace(n: number, options: { defaultRoute?: boolean } = {}): NetworkNamespace {
  const net = `10.${networkOctet()}.${n}`;
  const name = `cf${process.pid}n${n}`;
  const hostSide = `cfh${process.pid % 100000}n${n}`;
  const inside = `cfi${process.pid % 100000}n${n}`;
  const steps: string[][] = [
    ['netns', 'add', name],
    ['link', 'add', hostSide, 'type', 'veth', 'peer', 'name', inside],
    ['link', 'set', inside, 'netns', name],
    ['addr', 'add', `${net}.1/24`, 'dev', hostSide],
    ['link', 'set', hostSide, 'up'],
    ['-n', name, 'addr', 'add', `${net}.2/24`, 'dev', inside],
    ['-n', name, 'link', 'set', inside, 'up'],
    ['-n', name, 'link', 'set', 'lo', 'up'],
    ...(options.defaultRoute === true ? [['-n', name, 'route', 'add', 'default', 'via', `${net}.1`]] : []),
  ];
  if (!hooked) {
    hooked = true;
    process.once('exit', removeNetworkNamespaces);
  }
  made.push(name);
  for (const step of steps) {
    const r = ip(...step);
    if (!r.ok) throw new Error(`ip ${step.join(' ')} failed: ${r.text.trim()}`);
  }
  return {
    name, hostAddress: `${net}.1`, address: `${net}.2`, exec: ['ip', 'netns', 'exec', name],
    cut: () => void ip('link', 'set', hostSide, 'down'),
    restore: () => void ip('link', 'set', hostSide, 'up'),
  };
}

/** Deletes every namespace this process made (their veth pairs go with them). */
export function removeNetworkNamespaces(): void {
  for (const name of made.splice(0)) ip('netns', 'del', name);
}
