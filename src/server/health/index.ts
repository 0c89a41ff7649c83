/**
 * The service's periodic health checks, told to the notifier: VMs past their recovery point
 * objective (`rpo.missed`) and storage running out of space (`disk-space.low`) for local
 * repositories and the data directory. Each condition is told once when it starts, and again
 * only after it has cleared.
 */
export { HealthWatch, type HealthWatchOptions, type SpaceLocation } from './health-watch.js';
export { parseMinFree, type MinFree } from './min-free.js';
export { filesystemSpace, localRepositoryPath } from './filesystem-space.js';
