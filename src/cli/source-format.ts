import { DISK_FORMATS, type DiskFormat } from '../disk/index.js';
import { CofferError } from '../errors/index.js';

/** `--source-format FMT`: one of the formats Coffer reads, by qemu-img's names. */
export function parseSourceFormat(value: string): DiskFormat {
  const format = DISK_FORMATS.find((known) => known === value);
  if (format === undefined) throw new CofferError('E_USAGE', `--source-format ${value}: choose one of ${DISK_FORMATS.join(', ')} (qemu-img's names: vpc is VHD)`);
  return format;
}
