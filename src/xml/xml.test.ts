import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCofferError } from '../errors/index.js';
import {
  attr, childElement, childElements, escapeXml, MAX_XML_CHARACTERS, MAX_XML_DEPTH, newElement, parseXml, removeAttr, removeChildren,
  serializeXml, setAttr, setText, textOf, XmlSyntaxError, type XmlElement,
} from './index.js';

const READ = { what: 'the test XML', code: 'E_IMAGE_INVALID' } as const;
const root = (xml: string): XmlElement => parseXml(xml, READ).root;

/** The element as a plain tree (values decoded), to compare in one assertion. */
function shape(e: XmlElement): unknown {
  return { name: e.name, attributes: Object.fromEntries(e.attributes.map((a) => [a.name, attr(e, a.name)])), text: textOf(e), children: childElements(e).map(shape) };
}

test('well-formed documents: declaration, comments, both quotes, entities, CDATA, self-closing elements', () => {
  const cases: [string, unknown][] = [
    ['<a/>', { name: 'a', attributes: {}, text: '', children: [] }],
    [
      `<?xml version="1.0"?>\n<!-- libvirt -->\n<domain type='qemu' id="3"><name>web&amp;01</name><!-- x --><disk dev = 'v&lt;da&apos;'/></domain>\n`,
      {
        name: 'domain',
        attributes: { type: 'qemu', id: '3' },
        text: '',
        children: [
          { name: 'name', attributes: {}, text: 'web&01', children: [] },
          { name: 'disk', attributes: { dev: "v<da'" }, text: '', children: [] },
        ],
      },
    ],
    ['<t>&#65;&#x42;<![CDATA[<c>&amp;]]></t>', { name: 't', attributes: {}, text: 'AB<c>&amp;', children: [] }],
    ['\ufeff<x:y a.b-c="1"> </x:y>', { name: 'x:y', attributes: { 'a.b-c': '1' }, text: ' ', children: [] }],
    ['<a>x<b>y</b>z</a>', { name: 'a', attributes: {}, text: 'xz', children: [{ name: 'b', attributes: {}, text: 'y', children: [] }] }],
  ];
  for (const [xml, expected] of cases) assert.deepEqual(shape(root(xml)), expected, xml);
});

test('anything outside the subset, or not well-formed, is an XmlSyntaxError with the caller\'s code, one line naming the document and the character', () => {
  const bad: [string, RegExp][] = [
    ['', /no root element/],
    ['text', /text before the root/],
    ['garbage<a/>', /text before the root/],
    ['<a>', /<a> is not closed/],
    ['<a></b>', /<\/b> closes <a>/],
    ['<domain><name>x</domain>', /<\/domain> closes <name>/],
    ['</a>', /closes nothing/],
    ['<a/><b/>', /second root/],
    ['<a/>trailing', /text after the root/],
    ['<a/><![CDATA[x]]>', /CDATA section outside/],
    ['<a b=1/>', /quoted value for attribute b/],
    ['<a b="1" b="2"/>', /attribute b given twice/],
    ['<a b="1"c="2"/>', /space before an attribute/],
    ['<a b="<"/>', /< in the value of attribute b/],
    ['<a b="1"', /unterminated tag <a/],
    ['<a b="1/>', /unterminated value of attribute b/],
    ['<a b/>', /expected = after attribute b/],
    ['<1a/>', /expected a name/],
    ['<a>&unknown;</a>', /unknown entity &unknown;/],
    ['<a>&amp</a>', /unterminated entity reference/],
    ['<a>&#0;</a>', /not a character XML allows/],
    ['<a>&#xD800;</a>', /not a character XML allows/],
    ['<a>&#x110000;</a>', /not a character XML allows/],
    ['<a b="&bogus;"/>', /unknown entity/],
    ['<!DOCTYPE a><a/>', /DTDs/],
    ['<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>', /DTDs/],
    ['<a/><?pi x?>', /processing instructions/],
    ['<a><?pi x?></a>', /processing instructions/],
    ['<a/>\n<?xml version="1.0"?>', /processing instructions/],
    ['<a><!-- open </a>', /unterminated comment/],
    ['<a><![CDATA[ open </a>', /unterminated CDATA/],
    ['<?xml version="1.0"', /unterminated XML declaration/],
    [`${'<a>'.repeat(MAX_XML_DEPTH + 1)}${'</a>'.repeat(MAX_XML_DEPTH + 1)}`, new RegExp(`nested deeper than ${MAX_XML_DEPTH}`)],
  ];
  for (const [xml, why] of bad) {
    assert.throws(
      () => parseXml(xml, READ),
      (e) => e instanceof XmlSyntaxError && isCofferError(e, 'E_IMAGE_INVALID') && /^the test XML cannot be read at character \d+: /.test(e.message) && why.test(e.message) && !e.message.includes('\n'),
      xml,
    );
  }
  const error = (() => { try { parseXml('<a>\n  <b x="&nope;"/></a>', { what: 'libvirt output', code: 'E_LIBVIRT_ERROR' }); } catch (e) { return e; } })();
  assert.ok(error instanceof XmlSyntaxError && isCofferError(error, 'E_LIBVIRT_ERROR'));
  assert.equal(error.position, 12, 'the position is the bad reference\'s');
  assert.match(error.message, /^libvirt output cannot be read at character 12: /);
  // The deepest nesting allowed still parses.
  assert.equal(root(`${'<a>'.repeat(MAX_XML_DEPTH)}${'</a>'.repeat(MAX_XML_DEPTH)}`).name, 'a');
});

test('hostile documents fail fast: too long, deeply nested, or long runs that a backtracking reader would choke on', () => {
  const started = performance.now();
  assert.throws(() => parseXml(`<a>${' '.repeat(MAX_XML_CHARACTERS)}</a>`, READ), /longer than/);
  assert.throws(() => parseXml('<a>'.repeat(1_000_000), READ), /nested deeper/);
  const manyAttributes = Array.from({ length: 200_000 }, (_, i) => ` b${i}="1"`).join('');
  assert.throws(() => parseXml(`<a${manyAttributes}`, READ), /unterminated tag/);
  assert.equal(root(`<a${manyAttributes}/>`).attributes.length, 200_000);
  assert.throws(() => parseXml(`<a${' b="1"'.repeat(200_000)}/>`, READ), /given twice/);
  assert.throws(() => parseXml(`<a>${'&amp;'.repeat(200_000)}&`, READ), /unterminated entity/);
  const wide = `<a>${'<b c="d"/>'.repeat(200_000)}</a>`;
  assert.equal(childElements(root(wide)).length, 200_000);
  assert.ok(performance.now() - started < 10_000, `took ${performance.now() - started} ms`);
});

test('escaped text reads back as itself inside attributes of either quote and in content', () => {
  const value = `a<b>&'"c`;
  const r = root(`<r one='${escapeXml(value)}' two="${escapeXml(value)}">${escapeXml(value)}</r>`);
  assert.deepEqual([attr(r, 'one'), attr(r, 'two'), textOf(r)], [value, value, value]);
});

/** A document as libvirt writes it: declaration, comments, indentation, entities, CDATA, empty elements. */
const LIBVIRT_STYLE = `<?xml version='1.0' encoding='UTF-8'?>
<!--
WARNING: THIS IS AN AUTO-GENERATED FILE.
-->
<domain type='kvm' id='7'>
  <name>web&amp;01</name>
  <description><![CDATA[a <raw> & text]]></description>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/web&apos;01.qcow2' index='2'/>
      <target dev='vda' bus='virtio'/>
      <!-- kept -->
    </disk>
    <interface type='bridge'>
      <mac address='52:54:00:6b:3c:58'/>
      <target dev='vnet3'/>
    </interface>
  </devices>
</domain>
`;

test('a document read and written back unchanged is the same text, byte for byte', () => {
  assert.equal(serializeXml(parseXml(LIBVIRT_STYLE, READ)), LIBVIRT_STYLE);
  const bom = `\ufeff<a>\r\n\t<b/>&#65;</a>\n<!-- after -->\n`;
  assert.equal(serializeXml(parseXml(bom, READ)), bom);
});

test('tags are written in one normal form: single quotes, one space before each attribute', () => {
  const doc = parseXml(`<a  x = "it's" y='"q"'  ><b   /></a >`, READ);
  assert.equal(serializeXml(doc), `<a x='it&apos;s' y='"q"'><b/></a>`);
  assert.deepEqual([attr(doc.root, 'x'), attr(doc.root, 'y')], [`it's`, '"q"']);
});

test('edits change only what they touch: attributes, text, removed and added children', () => {
  const doc = parseXml(LIBVIRT_STYLE, READ);
  const domain = doc.root;
  removeAttr(domain, 'id');
  removeAttr(domain, 'absent');
  const name = childElement(domain, 'name');
  assert.ok(name !== undefined);
  assert.equal(textOf(name), 'web&01');
  setText(name, `new<&>'"`);
  assert.equal(textOf(name), `new<&>'"`);
  const description = childElement(domain, 'description');
  assert.equal(description === undefined ? undefined : textOf(description), 'a <raw> & text');
  const devices = childElement(domain, 'devices');
  assert.ok(devices !== undefined);
  const disk = childElement(devices, 'disk');
  assert.ok(disk !== undefined);
  assert.equal(attr(childElement(disk, 'source'), 'file'), `/var/lib/libvirt/images/web'01.qcow2`);
  assert.equal(attr(childElement(disk, 'absent'), 'file'), undefined);
  setAttr(disk, 'type', 'block');
  setAttr(disk, 'extra', 'a&b');
  removeChildren(disk, (c) => c.name === 'source');
  const nic = childElement(devices, 'interface');
  assert.ok(nic !== undefined);
  removeChildren(nic, (c) => c.name === 'target');
  nic.children.splice(-1, 0, { kind: 'text', raw: '\n      ' }, newElement('model', { type: "e1000'" }));
  const genid = newElement('genid');
  assert.equal(serializeXml({ before: [], root: genid, after: [] }), '<genid/>');
  assert.deepEqual(childElements(devices).map((e) => e.name), ['disk', 'interface']);
  assert.deepEqual(childElements(nic, 'mac').length, 1);

  const expected = LIBVIRT_STYLE.replace(" id='7'", '')
    .replace('web&amp;01</name>', 'new&lt;&amp;&gt;&apos;&quot;</name>')
    .replace(`<disk type='file' device='disk'>`, `<disk type='block' device='disk' extra='a&amp;b'>`)
    .replace(`\n      <source file='/var/lib/libvirt/images/web&apos;01.qcow2' index='2'/>`, '')
    .replace(`<target dev='vnet3'/>`, `<model type='e1000&apos;'/>`);
  assert.equal(serializeXml(doc), expected);
  // What was written reads back to the values set.
  const again = parseXml(serializeXml(doc), READ).root;
  assert.equal(textOf(childElement(again, 'name') ?? again), `new<&>'"`);
  assert.equal(attr(childElement(childElement(again, 'devices') ?? again, 'disk'), 'extra'), 'a&b');
});
