import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeXml, parseXml, XmlSyntaxError, type XmlElement } from './xml.js';

/** The element as a plain tree, to compare in one assertion. */
function shape(e: XmlElement): unknown {
  return { name: e.name, attributes: { ...e.attributes }, text: e.text, children: e.children.map(shape) };
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
  ];
  for (const [xml, expected] of cases) assert.deepEqual(shape(parseXml(xml)), expected, xml);
});

test('anything outside the subset, or not well-formed, is an error', () => {
  const bad = [
    '',
    'text',
    '<a>',
    '<a></b>',
    '<a/><b/>',
    '<a/>trailing',
    '<a b=1/>',
    '<a b="1" b="2"/>',
    '<a b="1"c="2"/>',
    '<a b="<"/>',
    '<a>&unknown;</a>',
    '<a>&amp</a>',
    '<a>&#0;</a>',
    '<!DOCTYPE a><a/>',
    '<a><?pi x?></a>',
    '<a><!-- open </a>',
    '<a><![CDATA[ open </a>',
    `${'<a>'.repeat(65)}${'</a>'.repeat(65)}`,
  ];
  for (const xml of bad) assert.throws(() => parseXml(xml), XmlSyntaxError, xml);
});

test('escaped text reads back as itself inside attributes of either quote and in content', () => {
  const value = `a<b>&'"c`;
  const root = parseXml(`<r one='${escapeXml(value)}' two="${escapeXml(value)}">${escapeXml(value)}</r>`);
  assert.deepEqual([root.attributes['one'], root.attributes['two'], root.text], [value, value, value]);
});
