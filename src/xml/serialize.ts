/**
 * Writes a tree back as text. Text, comments, CDATA and the declaration come out exactly as
 * read; tags come out in one normal form: `<name a='v' b='w'>`, one space before each
 * attribute, single quotes (a `'` inside a value read between double quotes becomes
 * `&apos;`), `<name/>` for an element marked `empty` that has no children. libvirt writes its
 * XML in that form, so its documents come back byte for byte where nothing was edited.
 */
import type { XmlDocument, XmlNode } from './tree.js';

/** The document as text. Recursion is bounded by the depth of the tree (a parsed one is at most MAX_XML_DEPTH deep). */
export function serializeXml(doc: XmlDocument): string {
  return [...doc.before.map((n) => n.raw), serializeNode(doc.root), ...doc.after.map((n) => n.raw)].join('');
}

function serializeNode(node: XmlNode): string {
  if (node.kind !== 'element') return node.raw;
  const attributes = node.attributes.map((a) => ` ${a.name}='${a.raw.replace(/'/g, '&apos;')}'`).join('');
  if (node.children.length === 0 && node.empty) return `<${node.name}${attributes}/>`;
  return `<${node.name}${attributes}>${node.children.map(serializeNode).join('')}</${node.name}>`;
}
