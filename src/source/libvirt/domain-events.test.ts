import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventLineReader, parseDomainEventLine, parseIoErrorDetail, type DomainEvent } from './domain-events.js';

test('virsh event lines as libvirt 9.0 prints them are read; parameter lines are not events', () => {
  assert.deepEqual(parseDomainEventLine("event 'io-error-reason' for domain 'web01':  () pause due to enospc"), { type: 'io-error-reason', detail: ' () pause due to enospc', params: {} });
  assert.deepEqual(parseDomainEventLine("event 'job-completed' for domain 'web01':"), { type: 'job-completed', detail: '', params: {} });
  assert.deepEqual(parseDomainEventLine("event 'lifecycle' for domain 'it''s': Suspended I/O Error"), { type: 'lifecycle', detail: 'Suspended I/O Error', params: {} });
  assert.deepEqual(parseDomainEventLine("event 'tray-change' for domain 'web01' disk ua-cd0: opened"), { type: 'tray-change', detail: 'opened', params: {} });
  assert.deepEqual(parseDomainEventLine("event 'agent-lifecycle' for domain 'web01'"), { type: 'agent-lifecycle', detail: '', params: {} });
  assert.equal(parseDomainEventLine('\toperation: 9'), undefined);
  assert.equal(parseDomainEventLine(''), undefined);
});

test("an io-error's detail: path, alias, action and reason; empty path and alias while a backup job's filter failed", () => {
  assert.deepEqual(parseIoErrorDetail(' () pause due to enospc'), { path: '', alias: '', action: 'pause', reason: 'enospc' });
  assert.deepEqual(parseIoErrorDetail('/images/web01 (2).qcow2 (virtio-disk1) report'), { path: '/images/web01 (2).qcow2', alias: 'virtio-disk1', action: 'report' });
  assert.deepEqual(parseIoErrorDetail('/images/a.raw (virtio-disk0) none due to eio'), { path: '/images/a.raw', alias: 'virtio-disk0', action: 'none', reason: 'eio' });
  assert.equal(parseIoErrorDetail('Suspended I/O Error'), undefined);
});

test("an event's parameter lines are its params; it is passed on at the next event or the flush, not before", () => {
  const events: DomainEvent[] = [];
  const reader = new EventLineReader((event) => events.push(event));
  assert.equal(reader.feed("event 'job-completed' for domain 'web01':"), true);
  assert.equal(reader.feed('\toperation: 9'), true);
  assert.equal(reader.feed('\terrmsg: Operation canceled: by: admin'), true);
  assert.equal(events.length, 0, 'more parameters may follow');
  reader.feed("event 'lifecycle' for domain 'web01': Resumed Unpaused");
  assert.deepEqual(events, [{ type: 'job-completed', detail: '', params: { operation: '9', errmsg: 'Operation canceled: by: admin' } }]);
  reader.flush();
  reader.flush();
  assert.deepEqual(events.map((e) => e.type), ['job-completed', 'lifecycle']);
  assert.equal(reader.feed('\tstray: parameter'), false, 'a parameter line with no event before it is dropped');
  assert.equal(events.length, 2);
});
