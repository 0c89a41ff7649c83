/**
 * A small, strict XML reader and writer for the documents `virsh` prints and reads (domain,
 * checkpoint and backup XML). It reads what libvirt writes: an optional `<?xml …?>`
 * declaration, comments, elements with single- or double-quoted attributes, text, CDATA, the
 * five predefined entities and numeric character references. No DTDs, namespaces or
 * processing instructions inside the document: anything else is an error, never a guess.
 * Untrusted input is bounded: at most {@link MAX_XML_BYTES} characters and
 * {@link MAX_XML_DEPTH} nested elements.
 */

/** One element: its name, attributes, child elements, and its own text (children's excluded). */
export interface XmlElement {
  name: string;
  attributes: Readonly<Record<string, string>>;
  children: XmlElement[];
  text: string;
}

/** libvirt's documents are kilobytes; 16 MiB leaves room for thousands of devices. */
export const MAX_XML_BYTES = 16 * 1024 * 1024;
export const MAX_XML_DEPTH = 64;

/** Thrown for text that is not well-formed XML of the supported subset. */
export class XmlSyntaxError extends Error {
  override readonly name = 'XmlSyntaxError';
  constructor(message: string, readonly position: number) {
    super(`${message} at character ${position}`);
  }
}

const NAME = /[A-Za-z_:][-A-Za-z0-9_.:]*/y;
const SPACE = /[ \t\r\n]*/y;
const ENTITIES: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Parses one XML document into its root element. */
export function parseXml(text: string): XmlElement {
  if (text.length > MAX_XML_BYTES) throw new XmlSyntaxError(`document larger than ${MAX_XML_BYTES} characters`, 0);
  let pos = 0;
  const fail = (message: string): never => {
    throw new XmlSyntaxError(message, pos);
  };
  const skipSpace = (): void => {
    SPACE.lastIndex = pos;
    SPACE.exec(text);
    pos = SPACE.lastIndex;
  };
  const readName = (): string => {
    NAME.lastIndex = pos;
    const match = NAME.exec(text);
    if (match === null) return fail('expected a name');
    pos = NAME.lastIndex;
    return match[0];
  };
  const skipMisc = (): void => {
    for (;;) {
      skipSpace();
      if (text.startsWith('<!--', pos)) {
        const end = text.indexOf('-->', pos + 4);
        if (end < 0) fail('unterminated comment');
        pos = end + 3;
      } else return;
    }
  };

  if (text.charCodeAt(0) === 0xfeff) pos = 1;
  if (text.startsWith('<?xml', pos)) {
    const end = text.indexOf('?>', pos);
    if (end < 0) fail('unterminated XML declaration');
    pos = end + 2;
  }
  skipMisc();
  if (text[pos] !== '<') fail('expected the root element');
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  while (root === undefined) {
    const parent = stack.at(-1);
    if (text.startsWith('<!--', pos)) {
      const end = text.indexOf('-->', pos + 4);
      if (end < 0) fail('unterminated comment');
      pos = end + 3;
    } else if (text.startsWith('<![CDATA[', pos)) {
      const end = text.indexOf(']]>', pos + 9);
      if (end < 0 || parent === undefined) fail('unterminated or misplaced CDATA section');
      (parent as XmlElement).text += text.slice(pos + 9, end);
      pos = end + 3;
    } else if (text.startsWith('</', pos)) {
      pos += 2;
      const name = readName();
      skipSpace();
      if (text[pos] !== '>') fail('expected > after the closing tag');
      pos += 1;
      const open = stack.pop();
      if (open === undefined || open.name !== name) fail(`</${name}> closes ${open === undefined ? 'nothing' : `<${open.name}>`}`);
      if (stack.length === 0) root = open;
    } else if (text[pos] === '<') {
      if (text[pos + 1] === '!' || text[pos + 1] === '?') fail('DTDs and processing instructions are not supported');
      pos += 1;
      const element: XmlElement = { name: readName(), attributes: {}, children: [], text: '' };
      const attributes: Record<string, string> = {};
      for (;;) {
        const before = pos;
        skipSpace();
        if (text.startsWith('/>', pos) || text[pos] === '>') break;
        if (pos === before) fail('expected a space before an attribute');
        const name = readName();
        skipSpace();
        if (text[pos] !== '=') fail(`expected = after attribute ${name}`);
        pos += 1;
        skipSpace();
        const quote = text[pos];
        if (quote !== '"' && quote !== "'") return fail(`expected a quoted value for attribute ${name}`);
        const end = text.indexOf(quote, pos + 1);
        if (end < 0) fail(`unterminated value of attribute ${name}`);
        if (Object.hasOwn(attributes, name)) fail(`attribute ${name} given twice`);
        const raw = text.slice(pos + 1, end);
        if (raw.includes('<')) fail(`< in the value of attribute ${name}`);
        attributes[name] = decodeEntities(raw, pos + 1);
        pos = end + 1;
      }
      element.attributes = attributes;
      parent?.children.push(element);
      if (text.startsWith('/>', pos)) {
        pos += 2;
        if (parent === undefined) root = element;
      } else {
        pos += 1;
        stack.push(element);
        if (stack.length > MAX_XML_DEPTH) fail(`elements nested deeper than ${MAX_XML_DEPTH}`);
      }
    } else {
      if (parent === undefined || pos >= text.length) return fail('unexpected end of the document');
      let end = text.indexOf('<', pos);
      if (end < 0) end = text.length;
      parent.text += decodeEntities(text.slice(pos, end), pos);
      pos = end;
    }
  }
  skipMisc();
  if (pos !== text.length) fail('text after the root element');
  return root;
}

function decodeEntities(raw: string, at: number): string {
  return raw.replace(/&([^;&\s]{0,10});?/g, (whole, name: string) => {
    if (!whole.endsWith(';')) throw new XmlSyntaxError(`unterminated entity &${name}`, at);
    const named = ENTITIES[name];
    if (named !== undefined) return named;
    const numeric = /^#(x[0-9a-fA-F]{1,6}|[0-9]{1,7})$/.exec(name);
    const code = numeric === null ? NaN : name[1] === 'x' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
    if (!Number.isInteger(code) || code > 0x10ffff || code === 0) throw new XmlSyntaxError(`unknown entity &${name};`, at);
    return String.fromCodePoint(code);
  });
}

/** The child elements named `name`. */
export function childrenNamed(element: XmlElement, name: string): XmlElement[] {
  return element.children.filter((c) => c.name === name);
}

/** The first child element named `name`, if any. */
export function childNamed(element: XmlElement, name: string): XmlElement | undefined {
  return element.children.find((c) => c.name === name);
}

/** Text safe inside an attribute value (single or double quotes) or element content. */
export function escapeXml(value: string): string {
  return value.replace(/[<>&'"]/g, (c) => `&${c === '<' ? 'lt' : c === '>' ? 'gt' : c === '&' ? 'amp' : c === "'" ? 'apos' : 'quot'};`);
}
