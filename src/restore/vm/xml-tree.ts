/**
 * A minimal XML tree for rewriting libvirt's own domain XML (what `virsh dumpxml` prints):
 * elements with attributes in their order, text, comments and processing instructions kept
 * byte for byte, so what is not edited is written back exactly as it was read.
 *
 * Accepted: `<?…?>`, `<!--…-->`, `<![CDATA[…]]>`, start/end/empty tags with single- or
 * double-quoted attributes, text. Not accepted (E_IMAGE_INVALID): DOCTYPE, unbalanced or
 * mismatched tags, more than one root, anything that is not one of the above. Attribute
 * values are kept escaped as read ({@link attr} unescapes, {@link setAttr} escapes).
 */
import { CofferError } from '../../errors/index.js';

/** An element: its name, attributes in document order (values escaped as in the file), children. */
export interface XmlElement {
  kind: 'element';
  name: string;
  attributes: { name: string; raw: string }[];
  children: XmlNode[];
  /** Written as `<x/>` when it has no children. */
  empty: boolean;
}

/** Text, comments, CDATA and processing instructions, kept verbatim. */
export interface XmlVerbatim {
  kind: 'verbatim';
  text: string;
}

export type XmlNode = XmlElement | XmlVerbatim;

/** A parsed document: what precedes the root, the root, what follows it. */
export interface XmlDocument {
  before: XmlVerbatim[];
  root: XmlElement;
  after: XmlVerbatim[];
}

/** At most this deep (libvirt's domain XML is about 6 levels deep). */
const MAX_DEPTH = 64;
const NAME = '[A-Za-z_][A-Za-z0-9_.:-]*';
const START_TAG = new RegExp(`^<(${NAME})((?:\\s+${NAME}\\s*=\\s*(?:"[^"<]*"|'[^'<]*'))*)\\s*(/?)>`);
const ATTRIBUTE = new RegExp(`(${NAME})\\s*=\\s*(?:"([^"<]*)"|'([^'<]*)')`, 'g');

/** Parses a document; throws E_IMAGE_INVALID naming the offset of what it cannot read. */
export function parseXml(text: string, what = 'XML'): XmlDocument {
  const bad = (offset: number, why: string): CofferError =>
    new CofferError('E_IMAGE_INVALID', `${what} cannot be read at character ${offset}: ${why}`);
  const top: XmlNode[] = [];
  const stack: XmlElement[] = [];
  const add = (node: XmlNode): void => {
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(node);
    else top.push(node);
  };
  let i = 0;
  while (i < text.length) {
    if (text[i] !== '<') {
      const end = text.indexOf('<', i);
      const stop = end === -1 ? text.length : end;
      add({ kind: 'verbatim', text: text.slice(i, stop) });
      i = stop;
      continue;
    }
    const special = [['<?', '?>'], ['<!--', '-->'], ['<![CDATA[', ']]>']].find(([open]) => text.startsWith(open as string, i));
    if (special) {
      const end = text.indexOf(special[1] as string, i);
      if (end === -1) throw bad(i, `unterminated ${special[0]}`);
      add({ kind: 'verbatim', text: text.slice(i, end + (special[1] as string).length) });
      i = end + (special[1] as string).length;
      continue;
    }
    if (text.startsWith('</', i)) {
      const m = new RegExp(`^</(${NAME})\\s*>`).exec(text.slice(i, i + 256));
      const open = stack.pop();
      if (!m || open === undefined || open.name !== m[1]) throw bad(i, `unexpected end tag${m ? ` </${m[1]}>` : ''}`);
      i += m[0].length;
      continue;
    }
    const m = START_TAG.exec(text.slice(i, i + 65536));
    if (!m) throw bad(i, 'not a tag');
    const element: XmlElement = { kind: 'element', name: m[1] as string, attributes: [], children: [], empty: m[3] === '/' };
    for (const a of (m[2] as string).matchAll(ATTRIBUTE)) element.attributes.push({ name: a[1] as string, raw: a[2] ?? a[3] ?? '' });
    add(element);
    if (!element.empty) {
      if (stack.length >= MAX_DEPTH) throw bad(i, `nested deeper than ${MAX_DEPTH}`);
      stack.push(element);
    }
    i += m[0].length;
  }
  if (stack.length > 0) throw bad(text.length, `<${stack[stack.length - 1]?.name}> is not closed`);
  const roots = top.filter((n): n is XmlElement => n.kind === 'element');
  const root = roots[0];
  if (root === undefined || roots.length > 1) throw bad(0, roots.length === 0 ? 'no root element' : 'more than one root element');
  const at = top.indexOf(root);
  const verbatim = (nodes: XmlNode[]): XmlVerbatim[] => nodes as XmlVerbatim[];
  if (top.some((n) => n.kind === 'verbatim' && /<!DOCTYPE/i.test(n.text))) throw bad(0, 'DOCTYPE is not accepted');
  return { before: verbatim(top.slice(0, at)), root, after: verbatim(top.slice(at + 1)) };
}

/** Writes a document back; untouched parts come out exactly as read. */
export function serializeXml(doc: XmlDocument): string {
  return [...doc.before.map((n) => n.text), serializeNode(doc.root), ...doc.after.map((n) => n.text)].join('');
}

function serializeNode(node: XmlNode): string {
  if (node.kind === 'verbatim') return node.text;
  const attributes = node.attributes.map((a) => ` ${a.name}='${a.raw.replace(/'/g, '&apos;')}'`).join('');
  if (node.children.length === 0 && node.empty) return `<${node.name}${attributes}/>`;
  return `<${node.name}${attributes}>${node.children.map(serializeNode).join('')}</${node.name}>`;
}

/** The child elements of `parent`, optionally only those named `name`. */
export function childElements(parent: XmlElement, name?: string): XmlElement[] {
  return parent.children.filter((c): c is XmlElement => c.kind === 'element' && (name === undefined || c.name === name));
}

/** An attribute's value, unescaped; undefined when absent. */
export function attr(element: XmlElement, name: string): string | undefined {
  const raw = element.attributes.find((a) => a.name === name)?.raw;
  return raw === undefined ? undefined : unescapeXml(raw);
}

/** Sets (or adds, at the end) an attribute. */
export function setAttr(element: XmlElement, name: string, value: string): void {
  const raw = escapeXml(value);
  const existing = element.attributes.find((a) => a.name === name);
  if (existing) existing.raw = raw;
  else element.attributes.push({ name, raw });
}

/** Removes an attribute if present. */
export function removeAttr(element: XmlElement, name: string): void {
  element.attributes = element.attributes.filter((a) => a.name !== name);
}

/**
 * Removes child elements for which `drop` is true, with the whitespace-only text just before
 * each, so the indentation stays tidy.
 */
export function removeChildren(parent: XmlElement, drop: (child: XmlElement) => boolean): void {
  const kept: XmlNode[] = [];
  for (const child of parent.children) {
    if (child.kind === 'element' && drop(child)) {
      const previous = kept[kept.length - 1];
      if (previous?.kind === 'verbatim' && /^\s*$/.test(previous.text)) kept.pop();
      continue;
    }
    kept.push(child);
  }
  parent.children = kept;
}

/** The text of an element (its verbatim children joined, unescaped). */
export function textOf(element: XmlElement): string {
  return unescapeXml(element.children.map((c) => (c.kind === 'verbatim' ? c.text : '')).join(''));
}

/** Replaces an element's content with one text. */
export function setText(element: XmlElement, text: string): void {
  element.children = [{ kind: 'verbatim', text: escapeXml(text) }];
  element.empty = false;
}

/** A new empty element `<name a='v' …/>`. */
export function newElement(name: string, attributes: Record<string, string>): XmlElement {
  return { kind: 'element', name, attributes: Object.entries(attributes).map(([n, v]) => ({ name: n, raw: escapeXml(v) })), children: [], empty: true };
}

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

export function unescapeXml(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (_, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[e] ?? '';
  });
}
