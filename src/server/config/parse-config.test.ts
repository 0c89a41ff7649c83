import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isCofferError } from '../../errors/index.js';
import { ConfigInvalidError, FIRST_START_CONFIG, parseConfig } from './index.js';

const CONTRIB = fileURLToPath(new URL('../../../../contrib/coffer.yaml', import.meta.url));

const BASE = `repositories:
  - name: main
    url: /srv/main
hosts:
  - name: hv1
    datastores: [ssd1]
vms:
  - name: web1
    host: hv1
    datastore: ssd1
    source: { images: [/img/web1.qcow2] }
    rpo: 26h
jobs:
  - name: nightly
    select: { names: [web1] }
    repository: main
    schedule: "mon..fri 22:00"
    timezone: Europe/Berlin
`;

test('the sample in contrib/ and the first-start file are valid', async () => {
  const sample = parseConfig(await readFile(CONTRIB, 'utf8'), 'contrib/coffer.yaml');
  assert.equal(sample.jobs?.length, 3);
  assert.deepEqual(sample.vms?.[1]?.source, { libvirt: { uri: 'qemu+ssh://hv2.example.org/system', domain: 'db1' } });
  assert.deepEqual(parseConfig(FIRST_START_CONFIG, 'coffer.yaml').vms, []);
  assert.equal(parseConfig(BASE, 'c.yaml').jobs?.[0]?.schedule, 'mon..fri 22:00');
});

// One real mistake per row: the edit to BASE, and the line and key the error must name.
const CASES: Array<{ what: string; edit: (text: string) => string; line: number; key: string; message: RegExp }> = [
  { what: 'bad schedule', edit: (t) => t.replace('mon..fri 22:00', 'mon..fri 25:00'), line: 17, key: 'jobs[0].schedule', message: /hour 25/ },
  { what: 'unknown time zone', edit: (t) => t.replace('Europe/Berlin', 'Mars/Olympus'), line: 18, key: 'jobs[0].timezone', message: /unknown time zone/ },
  { what: 'unknown repository', edit: (t) => t.replace('repository: main', 'repository: other'), line: 16, key: 'jobs[0].repository', message: /no repository "other"/ },
  { what: 'unknown host', edit: (t) => t.replace('host: hv1', 'host: hv9'), line: 9, key: 'vms[0].host', message: /no host "hv9"/ },
  { what: 'datastore not on the host', edit: (t) => t.replace('datastore: ssd1', 'datastore: ssd7'), line: 10, key: 'vms[0].datastore', message: /no datastore "ssd7"/ },
  { what: 'unknown key', edit: (t) => t.replace('    rpo: 26h', '    rpo: 26h\n    colour: blue'), line: 13, key: 'vms[0].colour', message: /unknown key/ },
  { what: 'missing key', edit: (t) => t.replace('    url: /srv/main\n', ''), line: 2, key: 'repositories[0].url', message: /is required/ },
  { what: 'bad duration', edit: (t) => t.replace('rpo: 26h', 'rpo: a day'), line: 12, key: 'vms[0].rpo', message: /not a duration/ },
  { what: 'two sources', edit: (t) => t.replace('{ images: [/img/web1.qcow2] }', '{ images: [/a], qmp: /b }'), line: 11, key: 'vms[0].source', message: /exactly one of/ },
  { what: 'duplicate name', edit: (t) => t.replace('hosts:', 'hosts:\n  - name: hv1'), line: 6, key: 'hosts[1].name', message: /used twice/ },
  { what: 'YAML syntax', edit: (t) => t.replace('  - name: web1', '  - name: [web1'), line: 9, key: '', message: /./ },
];

for (const c of CASES) {
  test(`an invalid configuration names the line and the key: ${c.what}`, () => {
    assert.throws(
      () => parseConfig(c.edit(BASE), '/etc/coffer.yaml'),
      (e) => {
        assert.ok(e instanceof ConfigInvalidError && isCofferError(e, 'E_CONFIG_INVALID'), String(e));
        const problem = e.problems[0];
        assert.ok(problem !== undefined);
        if (c.key !== '') assert.equal(problem.key, c.key, e.message);
        assert.equal(problem.line, c.line, e.message);
        assert.match(problem.message, c.message);
        assert.ok(e.message.startsWith(`/etc/coffer.yaml:${c.line}: `), e.message);
        assert.ok(!e.message.includes('\n'), 'one line');
        return true;
      },
    );
  });
}
