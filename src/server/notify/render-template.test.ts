import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderTemplate } from './render-template.js';

const context = { summary: 'nightly: "db1" failed\nsee below', failed: 2, job: 'nightly', vms: [{ vm: 'db1', error: 'E_X' }], repository: { name: 'main' } };

/** [case, template, rendered]. */
const CASES: [string, unknown, unknown][] = [
  ['text with placeholders', 'Coffer {{job}}: {{summary}}', 'Coffer nightly: nightly: "db1" failed\nsee below'],
  ['a lone placeholder keeps its JSON type', '{{failed}}', 2],
  ['a lone placeholder of a list', '{{vms}}', [{ vm: 'db1', error: 'E_X' }]],
  ['a dotted path', '{{repository.name}}', 'main'],
  ['spaces inside the braces', '{{ job }}', 'nightly'],
  ['an object inside text is JSON', 'vms={{vms}}', 'vms=[{"vm":"db1","error":"E_X"}]'],
  ['an unknown name alone is null', '{{nope}}', null],
  ['an unknown name in text is empty', 'x{{nope.deeper}}y', 'xy'],
  ['no walking into the prototype', '{{job.length}}', null],
  ['nested objects and lists', { a: ['{{job}}', { b: '{{failed}}' }], n: 3, t: true }, { a: ['nightly', { b: 2 }], n: 3, t: true }],
];

test('webhook templates fill placeholders and always give valid JSON', () => {
  for (const [name, template, expected] of CASES) {
    const rendered = renderTemplate(template, context);
    assert.deepEqual(rendered, expected, name);
    assert.deepEqual(JSON.parse(JSON.stringify(rendered)), expected, `${name}: round-trips through JSON`);
  }
});
