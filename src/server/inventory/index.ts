/**
 * The inventory as the service sees it: which VMs a job selects (a pure function the
 * scheduler shares), which VMs no job covers or are past their RPO, and the repositories'
 * snapshot lists through the repository library, cached briefly.
 */
export { selectVms, globToRegExp } from './select-vms.js';
export { coverageReport, type CoverageReport } from './coverage-report.js';
export { RepositoryCatalog, CATALOG_TTL_MS } from './repository-catalog.js';
