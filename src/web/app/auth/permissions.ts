/**
 * What the signed-in caller may do, from its grants (GET /auth/me) and the role table
 * (GET /roles): the console hides the controls a role cannot use. The server decides anyway
 * (deny by default); this only keeps buttons that would answer 403 out of sight.
 */
export interface Grant {
  role: string;
  path: string;
}
export interface RoleTable {
  roles: Array<{ name: string; permissions: string[] }>;
}

/** True when some grant, on any path, gives `permission` (what a filtered list needs). */
export function canSomewhere(grants: readonly Grant[], roles: RoleTable | undefined, permission: string): boolean {
  return grants.some((grant) => roles?.roles.find((r) => r.name === grant.role)?.permissions.includes(permission) === true);
}

/** True when a grant on `path` or above it (`/`, `/vms`…) gives `permission`. */
export function canOn(grants: readonly Grant[], roles: RoleTable | undefined, permission: string, path: string): boolean {
  return grants.some((grant) => {
    const covers = grant.path === '/' || path === grant.path || path.startsWith(`${grant.path}/`);
    return covers && roles?.roles.find((r) => r.name === grant.role)?.permissions.includes(permission) === true;
  });
}
