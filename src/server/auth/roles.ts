/**
 * The permission table, written once: what each role may do. Routes declare the permission
 * they need (http/route-access.ts); grants give a role on a path (grants.ts). A permission not
 * in a role's list is refused: deny by default.
 *
 * | permission        | Admin | Operator | BackupOperator | RestoreOperator | Auditor |
 * |-------------------|:-----:|:--------:|:--------------:|:---------------:|:-------:|
 * | inventory.read    |   x   |    x     |       x        |        x        |    x    |
 * | config.read       |   x   |    x     |                |                 |    x    |
 * | config.write      |   x   |          |                |                 |         |
 * | job.run           |   x   |    x     |       x        |                 |         |
 * | job.cancel        |   x   |    x     |       x        |                 |         |
 * | backup.run        |   x   |    x     |       x        |                 |         |
 * | restore.run       |   x   |    x     |                |        x        |         |
 * | files.browse      |   x   |    x     |                |        x        |         |
 * | snapshot.delete   |   x   |          |                |                 |         |
 * | users.read        |   x   |          |                |                 |    x    |
 * | users.write       |   x   |          |                |                 |         |
 * | audit.read        |   x   |          |                |                 |    x    |
 * | approvals.decide  |   x   |          |                |                 |         |
 */
export const PERMISSIONS = [
  'inventory.read',
  'config.read',
  'config.write',
  'job.run',
  'job.cancel',
  'backup.run',
  'restore.run',
  'files.browse',
  'snapshot.delete',
  'users.read',
  'users.write',
  'audit.read',
  'approvals.decide',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

export const ROLES = ['Admin', 'Operator', 'BackupOperator', 'RestoreOperator', 'Auditor'] as const;
export type Role = (typeof ROLES)[number];

export const ROLE_PERMISSIONS: Record<Role, readonly Permission[]> = {
  Admin: PERMISSIONS,
  Operator: ['inventory.read', 'config.read', 'job.run', 'job.cancel', 'backup.run', 'restore.run', 'files.browse'],
  BackupOperator: ['inventory.read', 'job.run', 'job.cancel', 'backup.run'],
  RestoreOperator: ['inventory.read', 'restore.run', 'files.browse'],
  Auditor: ['inventory.read', 'config.read', 'users.read', 'audit.read'],
};

export function isRole(text: string): text is Role {
  return (ROLES as readonly string[]).includes(text);
}

/** Paths a grant is given on: `/`, `/hosts/H`, `/vms/V`, `/repositories/R`, `/jobs/J`. */
export const GRANT_PATH_PATTERN = '^/$|^/(hosts|vms|repositories|jobs)/[A-Za-z0-9][A-Za-z0-9._-]{0,99}$';
