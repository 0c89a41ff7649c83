/**
 * Finding a snapshot a route acts on, and deciding whether the caller may: a snapshot lives
 * under its repository, its VM and the VM's host (`/repositories/R`, `/vms/V`, `/hosts/H`);
 * a grant on any of them with the permission is enough. Shared by the task-starting routes
 * and the file-browsing routes.
 */
import type { FastifyRequest } from 'fastify';
import type { Snapshot } from '../../../repo/index.js';
import type { Permission } from '../../auth/index.js';
import type { RepositoryConfig } from '../../config/index.js';
import type { RepositoryRef } from '../../worker/index.js';
import { ApiError } from '../api-error.js';
import { canSee } from '../security-hooks.js';
import type { ServiceContext } from '../service-context.js';

/** The repository named in the request's `repo` parameter, or 404. */
export function knownRepository(context: ServiceContext, name: string): RepositoryConfig {
  const config = context.catalog.config(name);
  if (config === undefined) throw new ApiError('E_NOT_FOUND', `no repository named ${name}`);
  return config;
}

/** How a worker opens a configured repository: its location and passphrase file, never a passphrase. */
export function repositoryRef(config: RepositoryConfig): RepositoryRef {
  return { name: config.name, url: config.url, ...(config['passphrase-file'] === undefined ? {} : { passphraseFile: config['passphrase-file'] }) };
}

/** The grant paths a VM's objects live under. */
export function vmPaths(context: ServiceContext, vm: string, repo?: string): string[] {
  const host = (context.config.config.vms ?? []).find((v) => v.name === vm)?.host;
  return [...(repo === undefined ? [] : [`/repositories/${repo}`]), `/vms/${vm}`, ...(host === undefined ? [] : [`/hosts/${host}`])];
}

/**
 * The snapshot `reference` (a full id or a unique prefix of 8+ characters) of repository
 * `repo`, if the caller holds `permission` on it. Not found (or ambiguous): 404 / 409. Found
 * but not the caller's: 403 (the route's permission is held somewhere, not here).
 */
export async function permittedSnapshot(context: ServiceContext, request: FastifyRequest, repo: string, reference: string, permission: Permission): Promise<Snapshot> {
  knownRepository(context, repo);
  const found = await context.catalog.findSnapshot(repo, reference);
  if (found === 'ambiguous') throw new ApiError('E_CONFLICT', `snapshot prefix ${reference} is ambiguous: give more characters`);
  if (found === undefined) throw new ApiError('E_NOT_FOUND', `no snapshot ${reference} in repository ${repo}`);
  if (!canSee(request, permission, vmPaths(context, found.vm, repo))) {
    throw new ApiError('E_FORBIDDEN', `you lack the permission ${permission} on VM ${found.vm}'s snapshots`);
  }
  return found;
}

/** The task runner (restore, verify, prune… are its tasks). */
export function runnerOf(context: ServiceContext): ServiceContext['work']['runner'] {
  return context.work.runner;
}

export const SnapshotParams = {
  type: 'object',
  required: ['repo', 'snapshot'],
  properties: { repo: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$' }, snapshot: { type: 'string', pattern: '^[0-9a-f]{8,64}$' } },
} as const;
