/**
 * The protection report: VMs that no job selects, and VMs whose last good backup is older
 * than their recovery point objective (or that have none). Pure: the last backup times come
 * from the repositories' snapshot lists (repository-catalog.ts), the clock from the caller.
 */
import { parseDuration, type ServiceConfig } from '../config/index.js';
import { selectVms } from './select-vms.js';

export interface CoverageReport {
  /** VMs that no job selects. */
  uncovered: string[];
  /** VMs with an RPO whose newest snapshot (in any repository) is older than it, or missing. */
  pastRpo: Array<{ vm: string; rpo: string; lastBackup: string | null; ageMs: number | null }>;
}

/** `lastBackups`: VM name → ISO time of its newest snapshot. */
export function coverageReport(config: ServiceConfig, lastBackups: ReadonlyMap<string, string>, now: number): CoverageReport {
  const vms = config.vms ?? [];
  const covered = new Set<string>();
  for (const job of config.jobs ?? []) for (const vm of selectVms(job.select, vms)) covered.add(vm.name);
  const pastRpo: CoverageReport['pastRpo'] = [];
  for (const vm of vms) {
    const rpoMs = vm.rpo === undefined ? undefined : parseDuration(vm.rpo);
    if (rpoMs === undefined) continue;
    const last = lastBackups.get(vm.name);
    const ageMs = last === undefined ? null : now - Date.parse(last);
    if (ageMs === null || ageMs > rpoMs) pastRpo.push({ vm: vm.name, rpo: vm.rpo as string, lastBackup: last ?? null, ageMs });
  }
  return { uncovered: vms.filter((vm) => !covered.has(vm.name)).map((vm) => vm.name), pastRpo };
}
