/**
 * Deciding a request: does any grant of the caller give a role with this permission on a path
 * that covers the object? A grant on `/` covers everything; a grant on `/vms/web1` covers
 * objects that live under that path. An object may live under several paths (a VM is under
 * `/vms/V` and under its host `/hosts/H`); any one of them covered is enough.
 */
import { ROLE_PERMISSIONS, isRole, type Permission } from './roles.js';

export interface Grant {
  role: string;
  path: string;
}

/** True when `grantPath` covers `objectPath`. */
export function pathCovers(grantPath: string, objectPath: string): boolean {
  return grantPath === '/' || objectPath === grantPath || objectPath.startsWith(`${grantPath}/`);
}

/** True when some grant gives `permission` on one of `objectPaths`. */
export function allows(grants: readonly Grant[], permission: Permission, objectPaths: readonly string[]): boolean {
  return grants.some((g) => isRole(g.role) && ROLE_PERMISSIONS[g.role].includes(permission) && objectPaths.some((p) => pathCovers(g.path, p)));
}

/** True when some grant gives `permission` anywhere (for lists, filtered item by item). */
export function allowsSomewhere(grants: readonly Grant[], permission: Permission): boolean {
  return grants.some((g) => isRole(g.role) && ROLE_PERMISSIONS[g.role].includes(permission));
}

/**
 * True when `wanted` is within `held`: every permission it gives on its path is given by
 * `held` on a path that covers it (a token may hold only a subset of its owner's rights).
 */
export function grantWithin(wanted: Grant, held: readonly Grant[]): boolean {
  if (!isRole(wanted.role)) return false;
  return ROLE_PERMISSIONS[wanted.role].every((permission) => allows(held, permission, [wanted.path]));
}
