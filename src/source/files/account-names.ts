import { readFile } from 'node:fs/promises';

/** User and group names by id, as /etc/passwd and /etc/group give them (empty maps if absent). */
export interface AccountNames {
  users: Map<number, string>;
  groups: Map<number, string>;
}

/** Reads the local account databases once (files only: no NSS, no network lookups). */
export async function readAccountNames(root = '/etc'): Promise<AccountNames> {
  return { users: await idMap(`${root}/passwd`), groups: await idMap(`${root}/group`) };
}

async function idMap(file: string): Promise<Map<number, string>> {
  const map = new Map<number, string>();
  const text = await readFile(file, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':');
    if (name !== undefined && name !== '' && id !== undefined && /^\d+$/.test(id) && !map.has(Number(id))) map.set(Number(id), name);
  }
  return map;
}
