import { readFileSync } from 'node:fs';
import { decodeName } from '../names/index.js';

/** Node's own decoding of an argument: UTF-8, each bad sequence as U+FFFD. */
const LOSSY_UTF8 = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * The command's arguments with the bytes the shell passed: Node decodes `argv` as UTF-8 and
 * turns each byte that is not UTF-8 into U+FFFD, so a path such as `/srv/caf\xe9` (Latin-1)
 * arrives as `/srv/caf�` and names nothing. Linux keeps the exact bytes in
 * `/proc/self/cmdline` (NUL-separated, Node's own options first): an argument holding U+FFFD
 * is replaced by its bytes decoded as names are (names/byte-names.ts: each such byte a lone
 * surrogate, which every host call turns back into the byte). The arguments are the last
 * `args.length` entries there; when any of them does not decode to what Node gave (the
 * command line was rewritten, another system), `args` is returned as it is.
 */
export function argumentsWithRawBytes(args: readonly string[], cmdline = readCommandLine): string[] {
  if (!args.some((a) => a.includes('\uFFFD'))) return [...args];
  const raw = cmdline();
  if (raw === undefined) return [...args];
  const entries = splitEntries(raw);
  if (entries.length < args.length) return [...args];
  const tail = entries.slice(entries.length - args.length);
  if (!tail.every((bytes, i) => LOSSY_UTF8.decode(bytes) === args[i])) return [...args];
  return args.map((arg, i) => (arg.includes('\uFFFD') ? decodeName(tail[i] as Buffer) : arg));
}

function readCommandLine(): Buffer | undefined {
  try {
    return readFileSync('/proc/self/cmdline');
  } catch {
    return undefined;
  }
}

/** The NUL-terminated entries of a command line. */
function splitEntries(raw: Buffer): Buffer[] {
  const entries: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] !== 0) continue;
    entries.push(raw.subarray(start, i));
    start = i + 1;
  }
  if (start < raw.length) entries.push(raw.subarray(start));
  return entries;
}
