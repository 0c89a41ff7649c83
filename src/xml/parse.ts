/**
 * A strict reader of the XML subset libvirt writes and reads (domain, checkpoint and backup
 * documents from `virsh`, and the domain definitions Coffer stores).
 *
 * Accepted:
 * - an optional byte order mark, then an optional `<?xml …?>` declaration at the very start;
 * - comments `<!--…-->` anywhere, whitespace around the root;
 * - exactly one root element; elements `<name …>…</name>` and `<name …/>`, names of ASCII
 *   letters, digits and `_ : . -` (a namespace prefix is just part of the name, `xmlns:*`
 *   is an ordinary attribute); attributes `name='value'` or `name="value"`, each once, a space
 *   before each, no `<` inside a value;
 * - text and `<![CDATA[…]]>` inside elements; references: the five predefined entities and
 *   numeric character references to characters XML allows.
 * Refused, with an {@link XmlSyntaxError}: DTDs (`<!DOCTYPE`, so no entities of the document's
 * own), processing instructions other than the declaration, any other reference, text outside
 * the root, unclosed or mismatched tags, and documents beyond the bounds: more than
 * {@link MAX_XML_CHARACTERS} characters or elements nested deeper than {@link MAX_XML_DEPTH}.
 * The parse is one pass, linear in the length of the text, without recursion.
 */
import { CofferError, type ErrorCode } from '../errors/index.js';
import { decodeReferences, ReferenceFault } from './escape.js';
import type { XmlDocument, XmlElement, XmlMarkup, XmlText } from './tree.js';

/** libvirt's documents are kilobytes; 16 Mi characters leave room for thousands of devices. */
export const MAX_XML_CHARACTERS = 16 * 1024 * 1024;
/** libvirt's domain XML is about 6 levels deep; 64 is ample and keeps a hostile nesting cheap. */
export const MAX_XML_DEPTH = 64;

/** Thrown for text that is not a well-formed document of the accepted subset; `code` is the caller's. */
export class XmlSyntaxError extends CofferError {
  constructor(code: ErrorCode, what: string, why: string, readonly position: number) {
    super(code, `${what} cannot be read at character ${position}: ${why}`);
  }
}

/** What a broken document means to the caller: how to name it and which error code to throw. */
export interface XmlParseOptions {
  /** The document, for messages (`the stored libvirt domain XML`). */
  what: string;
  /** The code of the {@link XmlSyntaxError} thrown (E_IMAGE_INVALID for a stored definition, E_LIBVIRT_ERROR for virsh's output…). */
  code: ErrorCode;
}

const NAME = /[A-Za-z_:][-A-Za-z0-9_.:]*/y;
const SPACE = /[ \t\r\n]*/y;
const WHITESPACE_ONLY = /^[ \t\r\n]*$/;

/**
 * Parses a document. Throws {@link XmlSyntaxError} (a CofferError with `options.code`) naming
 * the character where reading stopped.
 * @example parseXml(await virsh.run(['dumpxml', name]), { what: 'the domain XML', code: 'E_LIBVIRT_ERROR' }).root
 */
export function parseXml(text: string, options: XmlParseOptions): XmlDocument {
  let pos = 0;
  const fail = (why: string, at = pos): never => {
    throw new XmlSyntaxError(options.code, options.what, why, at);
  };
  if (text.length > MAX_XML_CHARACTERS) fail(`the document is longer than ${MAX_XML_CHARACTERS} characters`, MAX_XML_CHARACTERS);
  const decode = (raw: string, at: number): void => {
    try {
      decodeReferences(raw);
    } catch (error) {
      if (error instanceof ReferenceFault) fail(error.message, at + error.offset);
      throw error;
    }
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
  /** The markup from `pos` up to and including `close`, which must come. */
  const readUntil = (close: string, what: string): string => {
    const end = text.indexOf(close, pos);
    if (end < 0) fail(`unterminated ${what}`);
    const raw = text.slice(pos, end + close.length);
    pos = end + close.length;
    return raw;
  };

  const before: (XmlText | XmlMarkup)[] = [];
  const after: (XmlText | XmlMarkup)[] = [];
  if (text.charCodeAt(0) === 0xfeff) {
    before.push({ kind: 'text', raw: '\ufeff' });
    pos = 1;
  }
  if (text.startsWith('<?xml', pos) && /[ \t\r\n?]/.test(text[pos + 5] ?? '')) before.push({ kind: 'declaration', raw: readUntil('?>', 'XML declaration') });

  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  while (pos < text.length) {
    const parent = stack.at(-1);
    /** Adds a node other than the root to its parent, or around the root. */
    const add = (node: XmlText | XmlMarkup | XmlElement): void => {
      if (parent !== undefined) parent.children.push(node);
      else if (node.kind !== 'element') (root === undefined ? before : after).push(node);
    };
    if (text[pos] !== '<') {
      let end = text.indexOf('<', pos);
      if (end < 0) end = text.length;
      const raw = text.slice(pos, end);
      if (parent === undefined && !WHITESPACE_ONLY.test(raw)) fail(root === undefined ? 'text before the root element' : 'text after the root element');
      decode(raw, pos);
      add({ kind: 'text', raw });
      pos = end;
    } else if (text.startsWith('<!--', pos)) {
      add({ kind: 'comment', raw: readUntil('-->', 'comment') });
    } else if (text.startsWith('<![CDATA[', pos)) {
      if (parent === undefined) fail('a CDATA section outside the root element');
      add({ kind: 'cdata', raw: readUntil(']]>', 'CDATA section') });
    } else if (text[pos + 1] === '!' || text[pos + 1] === '?') {
      fail('DTDs and processing instructions are not accepted');
    } else if (text[pos + 1] === '/') {
      const at = pos;
      pos += 2;
      const name = readName();
      skipSpace();
      if (text[pos] !== '>') fail(`expected > to end </${name}`);
      pos += 1;
      const open = stack.pop();
      if (open === undefined || open.name !== name) fail(`</${name}> closes ${open === undefined ? 'nothing' : `<${open.name}>`}`, at);
    } else {
      if (parent === undefined && root !== undefined) fail('a second root element');
      const at = pos;
      pos += 1;
      const element: XmlElement = { kind: 'element', name: readName(), attributes: [], children: [], empty: false };
      const seen = new Set<string>();
      for (;;) {
        const beforeSpace = pos;
        skipSpace();
        if (text[pos] === '>' || text.startsWith('/>', pos)) break;
        if (pos >= text.length) fail(`unterminated tag <${element.name}`, at);
        if (pos === beforeSpace) fail('expected a space before an attribute');
        const name = readName();
        skipSpace();
        if (text[pos] !== '=') fail(`expected = after attribute ${name}`);
        pos += 1;
        skipSpace();
        const quote = text[pos];
        if (quote !== '"' && quote !== "'") return fail(`expected a quoted value for attribute ${name}`);
        const end = text.indexOf(quote, pos + 1);
        if (end < 0) fail(`unterminated value of attribute ${name}`);
        if (seen.has(name)) fail(`attribute ${name} given twice`);
        seen.add(name);
        const raw = text.slice(pos + 1, end);
        const lt = raw.indexOf('<');
        if (lt >= 0) fail(`< in the value of attribute ${name}`, pos + 1 + lt);
        decode(raw, pos + 1);
        element.attributes.push({ name, raw });
        pos = end + 1;
      }
      if (parent === undefined) root = element;
      else add(element);
      if (text[pos] === '/') {
        element.empty = true;
        pos += 2;
      } else {
        pos += 1;
        if (stack.length >= MAX_XML_DEPTH) fail(`elements nested deeper than ${MAX_XML_DEPTH}`, at);
        stack.push(element);
      }
    }
  }
  const unclosed = stack.at(-1);
  if (unclosed !== undefined) fail(`<${unclosed.name}> is not closed`);
  if (root === undefined) return fail('no root element');
  return { before, root, after };
}
