/**
 * The document tree {@link parseXml} returns and {@link serializeXml} writes back. Text,
 * comments and CDATA sections are kept as written (`raw`, references not decoded), so a
 * document read and written again keeps every byte outside the tags it has not edited. The
 * helpers below read values decoded and write them escaped.
 */
import { decodeReferences, escapeXml } from './escape.js';

/** An attribute; `raw` is its value as written between the quotes, references not decoded. */
export interface XmlAttribute {
  name: string;
  raw: string;
}

/** An element: its name, attributes in document order, and children in document order. */
export interface XmlElement {
  kind: 'element';
  name: string;
  attributes: XmlAttribute[];
  children: XmlNode[];
  /** Written as `<x/>` when it has no children (it was read that way, or made by {@link newElement}). */
  empty: boolean;
}

/** Character data as written, references not decoded (between elements, or whitespace around the root). */
export interface XmlText {
  kind: 'text';
  raw: string;
}

/** A comment `<!--…-->`, a CDATA section `<![CDATA[…]]>`, or the `<?xml …?>` declaration, as written (delimiters included). */
export interface XmlMarkup {
  kind: 'comment' | 'cdata' | 'declaration';
  raw: string;
}

export type XmlNode = XmlElement | XmlText | XmlMarkup;

/** A parsed document: what precedes the root (declaration, comments, whitespace), the root, what follows it. */
export interface XmlDocument {
  before: (XmlText | XmlMarkup)[];
  root: XmlElement;
  after: (XmlText | XmlMarkup)[];
}

/** The child elements of `parent`, in order; only those named `name` when given. */
export function childElements(parent: XmlElement, name?: string): XmlElement[] {
  return parent.children.filter((c): c is XmlElement => c.kind === 'element' && (name === undefined || c.name === name));
}

/** The first child element of `parent` named `name`, if any. */
export function childElement(parent: XmlElement, name: string): XmlElement | undefined {
  return parent.children.find((c): c is XmlElement => c.kind === 'element' && c.name === name);
}

/**
 * An attribute's value, decoded; undefined when the element has no such attribute, or when
 * there is no element (so `attr(childElement(disk, 'target'), 'dev')` reads an optional child).
 */
export function attr(element: XmlElement | undefined, name: string): string | undefined {
  const raw = element?.attributes.find((a) => a.name === name)?.raw;
  return raw === undefined ? undefined : decodeReferences(raw);
}

/** Sets an attribute to `value` (escaped), in place when present, else added last. */
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
 * Removes the child elements for which `drop` is true, each with the whitespace-only text
 * just before it, so the indentation of what remains stays tidy.
 */
export function removeChildren(parent: XmlElement, drop: (child: XmlElement) => boolean): void {
  const kept: XmlNode[] = [];
  for (const child of parent.children) {
    if (child.kind === 'element' && drop(child)) {
      const previous = kept.at(-1);
      if (previous?.kind === 'text' && /^\s*$/.test(previous.raw)) kept.pop();
      continue;
    }
    kept.push(child);
  }
  parent.children = kept;
}

/** An element's own text: its text children decoded and its CDATA sections' contents, joined (child elements' text excluded). */
export function textOf(element: XmlElement): string {
  let text = '';
  for (const c of element.children) {
    if (c.kind === 'text') text += decodeReferences(c.raw);
    else if (c.kind === 'cdata') text += c.raw.slice('<![CDATA['.length, -']]>'.length);
  }
  return text;
}

/** Replaces an element's content with one text, escaped. */
export function setText(element: XmlElement, text: string): void {
  element.children = [{ kind: 'text', raw: escapeXml(text) }];
  element.empty = false;
}

/** A new element without children, `<name a='v' …/>`, its attributes in the order given. */
export function newElement(name: string, attributes: Readonly<Record<string, string>> = {}): XmlElement {
  return { kind: 'element', name, attributes: Object.entries(attributes).map(([n, v]) => ({ name: n, raw: escapeXml(v) })), children: [], empty: true };
}
