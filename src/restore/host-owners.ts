import { readFile } from 'node:fs/promises';

/** An owner as a backup recorded it: ids, and the names they had there when known. */
export interface RecordedOwner {
  readonly uid: number;
  readonly gid: number;
  /** The user's name where the backup ran (file snapshots); undefined for a guest filesystem's ids. */
  readonly user?: string | undefined;
  readonly group?: string | undefined;
}

/**
 * Which owner a restore gives what it writes, for both file restores (`restore` of a file
 * snapshot, `files get --to`), as GNU tar extracts as root:
 * - by name (the default): a recorded name this host knows gives this host's id for it, so a
 *   file of `www-data` is `www-data`'s on the host it lands on, whatever id that name had
 *   where the backup ran; a name unknown here, or none recorded (a guest's ext4, XFS or
 *   NTFS holds ids only), gives the recorded id;
 * - numeric (tar's `--numeric-owner`): the recorded ids, names ignored.
 * Names are looked up in this host's /etc/passwd and /etc/group, read once (files only, as
 * the backup records them: no NSS, so an LDAP account is known by its id only); the first
 * line of a name wins, as for getpwnam.
 */
export class HostOwners {
  private constructor(
    private readonly users: ReadonlyMap<string, number>,
    private readonly groups: ReadonlyMap<string, number>,
  ) {}

  /** The recorded ids, names ignored. */
  static numeric(): HostOwners {
    return new HostOwners(new Map(), new Map());
  }

  /** By name through the account files under `etc` (an absent file knows no name). */
  static async byName(etc = '/etc'): Promise<HostOwners> {
    return new HostOwners(await idsByName(`${etc}/passwd`), await idsByName(`${etc}/group`));
  }

  /** By name, or numeric when `numeric` (a command's `--numeric-owner`). */
  static async for(options: { numeric?: boolean | undefined }): Promise<HostOwners> {
    return options.numeric === true ? HostOwners.numeric() : HostOwners.byName();
  }

  /** The ids to give an entry recorded with `owner`. */
  idsOf(owner: RecordedOwner): { uid: number; gid: number } {
    return {
      uid: (owner.user !== undefined ? this.users.get(owner.user) : undefined) ?? owner.uid,
      gid: (owner.group !== undefined ? this.groups.get(owner.group) : undefined) ?? owner.gid,
    };
  }
}

/** Name → id of an account file (`name:password:id:…` a line). */
async function idsByName(file: string): Promise<Map<string, number>> {
  const map = new Map<string, number>();
  for (const line of (await readFile(file, 'utf8').catch(() => '')).split('\n')) {
    const [name, , id] = line.split(':');
    if (name && id !== undefined && /^\d+$/.test(id) && !map.has(name)) map.set(name, Number(id));
  }
  return map;
}
