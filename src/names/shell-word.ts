/**
 * A word as it must be written on a POSIX shell's command line to reach a program unchanged:
 * as it is when it holds only characters no shell treats specially, else in single quotes
 * (a quote inside written `'\''`). For the commands Coffer's messages suggest ("run
 * 'coffer sync -r … --to …'") and the scripts it writes, so that a path with a space, a `$`
 * or a quote can be pasted as printed.
 */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:=,+@%-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
