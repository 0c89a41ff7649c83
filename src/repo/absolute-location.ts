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
  if (isHttpLocation(location) || isS3Location(location)) return location;
  if (/^[a-z][a-z0-9+]*:/i.test(location) && !location.startsWith('local:')) return location;
  return resolve(location.replace(/^local:/, ''));
}
