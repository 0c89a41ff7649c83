/**
 * File names as bytes. ext2/3/4 and XFS store a name (and a symlink's target) as up to 255
 * arbitrary bytes other than `/` and NUL; nothing makes them UTF-8. A guest with a Latin-1
 * locale writes `caf\xe9`. Decoding such bytes as UTF-8 with U+FFFD for the bad ones loses
 * them: `caf\xe9` and `caf\xe8` become one name, and a file restored under the decoded name
 * is not the file the guest had.
 *
 * Coffer keeps names as JavaScript strings, decoded losslessly the way Python's
 * "surrogateescape" does: valid UTF-8 decodes as usual, and each byte 0x80..0xFF that is
 * not part of a valid UTF-8 sequence becomes the lone surrogate U+DC80..U+DCFF ("raw
 * byte"). UTF-8 cannot encode a surrogate, so no valid name decodes to one and the mapping
 * is reversible: {@link encodeName} gives back the exact bytes, which a restore passes to
 * the host as a Buffer path. JSON keeps lone surrogates (`"caf\udce9"`).
 *
 * On a terminal, raw bytes and control characters are shown as `\xNN` and a backslash as
 * `\\` ({@link printableName}), so a raw `caf\xe9` (4 bytes) and a name that holds the
 * text `caf\xe9` (7 bytes) never print alike; a path typed back that way is read by
 * {@link unescapeName}. A machine reading JSON gets a name's bytes in hex ({@link nameBytesHex}):
 * a lone surrogate is valid in JSON text but most tools (jq) turn it into U+FFFD.
 */

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** First and last lone surrogate that stand for a raw byte 0x80..0xFF. */
const RAW_BYTE_BASE = 0xdc00;

/** A raw byte (a low surrogate U+DC80..U+DCFF that is not the second half of a pair). */
const RAW_BYTE = /(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/;

/** Decodes a name's bytes: UTF-8 where valid, each other byte ≥ 0x80 as a raw-byte surrogate. */
export function decodeName(bytes: Uint8Array): string {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    return decodeEscaping(bytes);
  }
}

/** The exact bytes a name decoded by {@link decodeName} came from. */
export function encodeName(name: string): Buffer {
  if (!RAW_BYTE.test(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let text = '';
  for (const char of name) {
    const unit = char.charCodeAt(0);
    if (char.length === 1 && unit >= 0xdc80 && unit <= 0xdcff) {
      if (text !== '') parts.push(Buffer.from(text, 'utf8'));
      text = '';
      parts.push(Buffer.of(unit - RAW_BYTE_BASE));
    } else {
      text += char;
    }
  }
  if (text !== '') parts.push(Buffer.from(text, 'utf8'));
  return Buffer.concat(parts);
}

/** Whether a name holds bytes that are not UTF-8 (a host path for it must be a Buffer). */
export function hasRawBytes(name: string): boolean {
  return RAW_BYTE.test(name);
}

/**
 * A path as a host call takes it: the string itself when it is UTF-8 (nearly always), else the
 * exact bytes as a Buffer (Node's fs calls and the addon take either). A string with a raw
 * byte given to Node would be written as UTF-8 with U+FFFD for it: another name.
 */
export function hostPath(path: string): string | Buffer {
  return RAW_BYTE.test(path) ? encodeName(path) : path;
}

/**
 * Whether a string is one {@link decodeName} gives for some bytes: well formed but for raw
 * bytes, and no run of raw bytes that is itself valid UTF-8 (`\udcc3\udca9` is the bytes of
 * "é", which decode as "é"). Two different such strings have different bytes.
 */
export function isDecodedName(name: string): boolean {
  if (!/\p{Cs}/u.test(name)) return true;
  return decodeName(encodeName(name)) === name;
}

/** Control characters (C0 and DEL) and raw bytes: what a terminal must not receive as they are. */
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f]|(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/g;

/** `\xNN`: a control character by its code, a raw byte by its value. */
function hexEscape(c: string): string {
  const unit = c.charCodeAt(0);
  const byte = unit >= 0xdc80 ? unit - RAW_BYTE_BASE : unit;
  return `\\x${byte.toString(16).padStart(2, '0')}`;
}

/**
 * A name safe to print on a terminal and to type back: control characters and raw bytes as
 * `\xNN` (the byte's value), a backslash as `\\`, everything else as it is. Two different
 * names never print alike; {@link unescapeName} reads the result back to the name.
 */
export function printableName(name: string): string {
  // eslint-disable-next-line no-control-regex
  return name.replace(/\\|[\u0000-\u001f\u007f]|(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/g, (c) => (c === '\\' ? '\\\\' : hexEscape(c)));
}

/**
 * A message safe to print on a terminal: control characters and raw bytes as `\xNN`,
 * backslashes left alone. For text whose names were already made printable with
 * {@link printableName} (escaping it again would double their backslashes).
 */
export function printableText(text: string): string {
  return text.replace(UNPRINTABLE, hexEscape);
}

/** An escape {@link unescapeName} reads: `\xNN` or `\\`. */
const ESCAPE = /\\x[0-9a-fA-F]{2}|\\\\/;

/**
 * The name a typed path component (or pattern) stands for when it holds escapes as
 * {@link printableName} writes them: `\xNN` is the byte NN and `\\` a backslash; any other
 * backslash is itself. `caf\xe9` is the four bytes 63 61 66 E9, `caf\xc3\xa9` is "café",
 * `caf\\xe9` is the seven characters `caf\xe9`. Returns `undefined` when the text holds no
 * escape (it stands for itself).
 */
export function unescapeName(text: string): string | undefined {
  if (!ESCAPE.test(text)) return undefined;
  const parts: Buffer[] = [];
  let at = 0;
  for (const match of text.matchAll(new RegExp(ESCAPE.source, 'g'))) {
    const byte = match[0] === '\\\\' ? 0x5c : Number.parseInt(match[0].slice(2), 16);
    parts.push(encodeName(text.slice(at, match.index)), Buffer.of(byte));
    at = (match.index as number) + match[0].length;
  }
  parts.push(encodeName(text.slice(at)));
  return decodeName(Buffer.concat(parts));
}

/** A name's bytes in hex when it holds raw bytes (for JSON beside the name), else `undefined`. */
export function nameBytesHex(name: string): string | undefined {
  return hasRawBytes(name) ? encodeName(name).toString('hex') : undefined;
}

/**
 * `{ [key]: text }`, with `[key]Bytes` beside it (hex) when the text holds bytes that are not
 * UTF-8: JSON keeps them as lone surrogates (`"caf\udce9"`), which most readers (jq, Python's
 * json with default settings) turn into U+FFFD, so the hex is what a script can trust.
 */
export function withNameBytes(key: string, text: string): Record<string, string> {
  const hex = nameBytesHex(text);
  return hex === undefined ? { [key]: text } : { [key]: text, [`${key}Bytes`]: hex };
}

/**
 * `{ [key]: printableName(text) }`, with `[key]Bytes` beside it (the exact bytes in hex) when
 * the printable form holds an escape (a byte that is not UTF-8, a control character or a
 * backslash). For JSON a browser reads: there a lone surrogate becomes U+FFFD when text is
 * put into a URL or a query string, so the name itself is given in the form a path typed back
 * takes ({@link unescapeName}), which is plain text; and a name without `[key]Bytes` is
 * literally what the filesystem holds.
 *
 * @example printableWithBytes('name', decodeName(Buffer.from('caf\xe9', 'latin1')))
 * // { name: 'caf\\xe9', nameBytes: '636166e9' }
 */
export function printableWithBytes<K extends string>(key: K, text: string): { [P in K]: string } & { [P in `${K}Bytes`]?: string } {
  const shown = printableName(text);
  const named = (shown === text ? { [key]: text } : { [key]: shown, [`${key}Bytes`]: encodeName(text).toString('hex') });
  return named as { [P in K]: string } & { [P in `${K}Bytes`]?: string };
}

/** The slow path of {@link decodeName}: walks the bytes, escaping each one no valid sequence takes. */
function decodeEscaping(bytes: Uint8Array): string {
  const units: number[] = [];
  let i = 0;
  while (i < bytes.length) {
    const length = validSequenceLength(bytes, i);
    if (length === 0) {
      units.push(RAW_BYTE_BASE + (bytes[i] as number));
      i++;
      continue;
    }
    const point = codePoint(bytes, i, length);
    if (point > 0xffff) units.push(0xd800 + ((point - 0x10000) >> 10), 0xdc00 + ((point - 0x10000) & 0x3ff));
    else units.push(point);
    i += length;
  }
  let out = '';
  for (let from = 0; from < units.length; from += 4096) out += String.fromCharCode(...units.slice(from, from + 4096));
  return out;
}

/**
 * The length of the valid UTF-8 sequence at `i` (1..4), or 0 when the byte there starts
 * none: no overlong forms, no surrogates (ED A0..BF), nothing above U+10FFFF, as the
 * Unicode standard's table of well-formed sequences says.
 */
function validSequenceLength(bytes: Uint8Array, i: number): number {
  const lead = bytes[i] as number;
  if (lead < 0x80) return 1;
  let length: number;
  let low = 0x80;
  let high = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) length = 2;
  else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead === 0xe0) low = 0xa0;
    if (lead === 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead === 0xf0) low = 0x90;
    if (lead === 0xf4) high = 0x8f;
  } else return 0;
  if (i + length > bytes.length) return 0;
  const second = bytes[i + 1] as number;
  if (second < low || second > high) return 0;
  for (let k = 2; k < length; k++) {
    const next = bytes[i + k] as number;
    if (next < 0x80 || next > 0xbf) return 0;
  }
  return length;
}

function codePoint(bytes: Uint8Array, i: number, length: number): number {
  const lead = bytes[i] as number;
  let point = length === 1 ? lead : length === 2 ? lead & 0x1f : length === 3 ? lead & 0x0f : lead & 0x07;
  for (let k = 1; k < length; k++) point = (point << 6) | ((bytes[i + k] as number) & 0x3f);
  return point;
}
