/**
 * Which VMs a job's selector picks, resolved against the inventory at the moment it is asked
 * (a VM added later is picked up by the next run). A VM is selected when it matches any of
 * the criteria given: a name in `names`, a name matching a glob in `globs` (`*` any run of
 * characters, `?` one, `[abc]` a set, `[!abc]` or `[^abc]` its complement), a tag in `tags`,
 * or a host in `hosts`. An empty selector selects nothing. Pure: the scheduler calls it too.
 */
import type { VmConfig, VmSelector } from '../config/index.js';

/** The VMs `selector` picks, in inventory order. */
export function selectVms<T extends Pick<VmConfig, 'name' | 'host' | 'tags'>>(selector: VmSelector, vms: readonly T[]): T[] {
  const names = new Set(selector.names ?? []);
  const tags = new Set(selector.tags ?? []);
  const hosts = new Set(selector.hosts ?? []);
  const globs = (selector.globs ?? []).map(globToRegExp);
  return vms.filter((vm) => names.has(vm.name) || hosts.has(vm.host) || (vm.tags ?? []).some((t) => tags.has(t)) || globs.some((g) => g.test(vm.name)));
}

/** A shell-style glob as an anchored regular expression. */
export function globToRegExp(glob: string): RegExp {
  let out = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*') out += '.*';
    else if (c === '?') out += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) {
        out += '\\[';
        continue;
      }
      let set = glob.slice(i + 1, end);
      if (set.startsWith('!') || set.startsWith('^')) set = `^${set.slice(1)}`;
      out += `[${set.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else out += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`${out}$`);
}
