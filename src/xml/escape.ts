/**
 * Character and entity references: the five predefined entities (`&lt;` `&gt;` `&amp;`
 * `&quot;` `&apos;`) and numeric references (`&#65;`, `&#x41;`) of a character XML allows.
 * Nothing else: a document that declares entities of its own is refused before it gets here.
 */

const PREDEFINED: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** The longest reference between `&` and `;` (`#x10FFFF`, `#1114111`). */
const LONGEST_REFERENCE = 8;

/** Text safe inside an attribute value (single or double quotes) and in element content. */
export function escapeXml(value: string): string {
  return value.replace(/[<>&'"]/g, (c) => `&${c === '<' ? 'lt' : c === '>' ? 'gt' : c === '&' ? 'amp' : c === "'" ? 'apos' : 'quot'};`);
}

/**
 * `raw` with its references replaced by the characters they stand for. Throws a plain
 * `RangeError` whose message says what is wrong and whose `offset` property is the index in
 * `raw` of the bad reference; the parser turns it into an {@link XmlSyntaxError}.
 * Linear in the length of `raw`.
 */
export function decodeReferences(raw: string): string {
  let out = '';
  let from = 0;
  for (let amp = raw.indexOf('&'); amp >= 0; amp = raw.indexOf('&', from)) {
    out += raw.slice(from, amp);
    const semicolon = raw.indexOf(';', amp + 1);
    if (semicolon < 0 || semicolon - amp - 1 > LONGEST_REFERENCE) throw new ReferenceFault(`unterminated entity reference ${JSON.stringify(raw.slice(amp, amp + LONGEST_REFERENCE + 2))}`, amp);
    const name = raw.slice(amp + 1, semicolon);
    out += PREDEFINED[name] ?? numericReference(name, amp);
    from = semicolon + 1;
  }
  return out + raw.slice(from);
}

function numericReference(name: string, offset: number): string {
  const match = /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(name);
  const code = match === null ? NaN : match[1] !== undefined ? parseInt(match[1], 16) : parseInt(match[2] as string, 10);
  if (Number.isNaN(code)) throw new ReferenceFault(`unknown entity &${name}; (only &lt; &gt; &amp; &quot; &apos; and numeric references)`, offset);
  if (!isXmlCharacter(code)) throw new ReferenceFault(`&${name}; is not a character XML allows`, offset);
  return String.fromCodePoint(code);
}

/** XML 1.0's Char production: tab, newline, carriage return, and the code points from space up, less surrogates and U+FFFE/U+FFFF. */
function isXmlCharacter(code: number): boolean {
  return code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code <= 0xd7ff) || (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff);
}

/** A bad reference at `offset` of the text being decoded. */
export class ReferenceFault extends RangeError {
  constructor(message: string, readonly offset: number) {
    super(message);
  }
}
