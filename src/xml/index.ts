/**
 * @module xml
 * Coffer's one XML reader and writer, for the documents libvirt prints and reads. It parses
 * untrusted text strictly and within bounds into a tree that keeps text, comments and
 * whitespace as written, so a document can be read for values (`childElement`, `attr`,
 * `textOf`) or edited and written back with everything it did not touch unchanged
 * (`setAttr`, `removeChildren`, `setText`, `serializeXml`). `escapeXml` makes any string
 * safe to put in a document built by hand. The subset accepted is described in parse.ts.
 */
export { parseXml, XmlSyntaxError, MAX_XML_CHARACTERS, MAX_XML_DEPTH, type XmlParseOptions } from './parse.js';
export { serializeXml } from './serialize.js';
export { escapeXml } from './escape.js';
export {
  attr, childElement, childElements, newElement, removeAttr, removeChildren, setAttr, setText, textOf,
  type XmlAttribute, type XmlDocument, type XmlElement, type XmlMarkup, type XmlNode, type XmlText,
} from './tree.js';
