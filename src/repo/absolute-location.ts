import { realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import { isHttpLocation } from './backend/http-location.js';
import { isS3Location } from './backend/s3-location.js';

/**
 * The location as it reaches the same repository from any working directory: a local
 * directory's path made absolute (`./backups` → `/root/backups`); `s3:` and `https://`
 * locations as they are. For what is kept to be read later, elsewhere (the source a sync
 * copy came from, which verify's advice names).
 */
export function absoluteLocation(location: string): string {
  return isLocal(location) ? resolve(location.replace(/^local:/, '')) : location;
}

/**
 * Whether two locations name the same place: equal once made absolute, or local directories
 * that are one directory on disk (`./main/` and `/srv/main`, a symbolic link to it).
 */
export async function sameLocation(a: string, b: string): Promise<boolean> {
  const [left, right] = [absoluteLocation(a), absoluteLocation(b)];
  if (left === right) return true;
  if (!isLocal(a) || !isLocal(b)) return false;
  const [realLeft, realRight] = await Promise.all([realpath(left).catch(() => left), realpath(right).catch(() => right)]);
  return realLeft === realRight;
}

function isLocal(location: string): boolean {
  return !isHttpLocation(location) && !isS3Location(location) && !(/^[a-z][a-z0-9+]*:/i.test(location) && !location.startsWith('local:'));
}
