/**
 * The inventory as the service sees it: which VMs a job selects (a pure function the
 * scheduler shares), which VMs no job covers or are past their RPO, and the repositories'
 * snapshots through the snapshot index in the state database (derived from the repositories).
 */
export { selectVms, globToRegExp } from './select-vms.js';
export { coverageReport, type CoverageReport } from './coverage-report.js';
export { RepositoryCatalog, CATALOG_TTL_MS, REFRESH_INTERVAL_MS } from './repository-catalog.js';
export { SnapshotIndex, type IndexedSnapshot, type RefreshReport, type SnapshotQuery } from './snapshot-index.js';
