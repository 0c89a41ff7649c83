/**
 * Headers of a file handed out of a guest filesystem. Guest names are hostile input: a name
 * may hold quotes, CR/LF, `;`, `/`, NUL or any Unicode, and must never break a header or
 * steer the browser. Content-Disposition carries an ASCII fallback with every unsafe byte
 * replaced and the exact name percent-encoded as `filename*` (RFC 6266, RFC 8187). A name
 * with bytes that are not UTF-8 (`caf\xe9` from a Latin-1 guest, held as lone surrogates:
 * names/byte-names.ts) cannot be said in UTF-8: each such byte is written `%XX` (`caf%E9`),
 * as the server's zip names it (restore/files/safe-name.ts), and any other lone surrogate as
 * U+FFFD (percent-encoding would throw on it). The content type is sniffed from the first
 * bytes for preview, from a short allow-list only: plain text (as text/plain, so HTML or SVG
 * from a guest is never rendered), and PNG, JPEG, GIF, WebP.
 */

/** `attachment` (or `inline`) with a safe fallback name and the exact name in UTF-8 (a byte that is not UTF-8 as `%XX`). */
export function contentDisposition(decodedName: string, inline = false): string {
  const name = decodedName
    .replace(/(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/g, (c) => `%${(c.charCodeAt(0) - 0xdc00).toString(16).toUpperCase()}`)
    .replace(/\p{Cs}/gu, '\uFFFD');
  // eslint-disable-next-line no-control-regex
  const fallback = name.replace(/[^\x20-\x7e]|["\\/;%]/g, '_').replace(/^[.\s]+/, '_').slice(0, 200) || 'download';
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${inline ? 'inline' : 'attachment'}; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

const IMAGES: { type: string; magic: number[]; at?: number }[] = [
  { type: 'image/png', magic: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] },
  { type: 'image/jpeg', magic: [0xff, 0xd8, 0xff] },
  { type: 'image/gif', magic: [0x47, 0x49, 0x46, 0x38] },
  { type: 'image/webp', magic: [0x57, 0x45, 0x42, 0x50], at: 8 },
];

/** The type to serve a file's bytes as, from its first bytes (up to 8 KiB). */
export function sniffContentType(head: Uint8Array): string {
  for (const image of IMAGES) {
    const at = image.at ?? 0;
    if (head.length >= at + image.magic.length && image.magic.every((b, i) => head[at + i] === b)) {
      if (image.type !== 'image/webp' || (head[0] === 0x52 && head[1] === 0x49 && head[2] === 0x46 && head[3] === 0x46)) return image.type;
    }
  }
  if (head.length === 0) return 'text/plain; charset=utf-8';
  if (head.includes(0)) return 'application/octet-stream';
  try {
    // A cut in the middle of a character at the end of the sample is not a reason to refuse.
    new TextDecoder('utf-8', { fatal: true }).decode(head.length >= 8192 ? trimPartial(head) : head);
    return 'text/plain; charset=utf-8';
  } catch {
    return 'application/octet-stream';
  }
}

function trimPartial(bytes: Uint8Array): Uint8Array {
  let end = bytes.length;
  for (let i = 1; i <= 3 && end - i >= 0; i++) {
    const b = bytes[end - i] as number;
    if ((b & 0xc0) === 0x80) continue;
    if (b >= 0xc0) end -= i;
    break;
  }
  return bytes.subarray(0, end);
}

/**
 * A `Range` header against a size: one range `bytes=a-b`, `bytes=a-` or `bytes=-n`.
 * Returns the inclusive range, `undefined` to serve the whole file (no header, several
 * ranges, or another unit: RFC 9110 lets a server ignore them), or `'unsatisfiable'`.
 */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | undefined | 'unsatisfiable' {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (match === null) return undefined;
  const [, a = '', b = ''] = match;
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const n = Number(b);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}
