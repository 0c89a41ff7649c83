/**
 * Name matching in an ext4 directory with the casefold flag (`chattr +F`, on a filesystem made
 * with `-O casefold`): Linux finds an entry whatever the case and Unicode normalization of the
 * name asked for, comparing both names folded (the filesystem's encoding, utf8-12.1: NFD, then
 * case folded), and names that are not valid UTF-8 byte for byte. Folding here is NFD and
 * JavaScript's case mapping to upper then lower case, which folds as Unicode's full case
 * folding does for the names people type (`É`/`é`, `ß`/`SS`, final sigma); it is used only to
 * find an entry the exact name did not, never to change a name.
 */
import { hasRawBytes } from '../../names/index.js';

/** `name` folded for comparison, or undefined when it is not UTF-8 (such names match exactly only). */
export function foldedName(name: string): string | undefined {
  if (hasRawBytes(name)) return undefined;
  return name.normalize('NFD').toUpperCase().toLowerCase().normalize('NFD');
}
