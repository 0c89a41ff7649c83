import { describe, expect, it } from 'vitest';
import { detailLines } from './audit-details';

describe('detailLines: an audit entry\'s details in words, not JSON', () => {
  it('one line per key, plain values as they are', () => {
    expect(detailLines({ from: 3, to: 4, changed: true, comment: 'e2e: four eyes' })).toEqual(['from: 3', 'to: 4', 'changed: true', 'comment: e2e: four eyes']);
  });

  it('lists joined by commas, objects as "key value", lists of objects by semicolons', () => {
    expect(detailLines({ vms: ['web1', 'fileserver'] })).toEqual(['vms: web1, fileserver']);
    expect(detailLines({ grants: [{ role: 'Admin', path: '/' }, { role: 'RestoreOperator', path: '/vms/web1' }] })).toEqual(['grants: role Admin, path /; role RestoreOperator, path /vms/web1']);
    expect(detailLines({ before: [], after: null, query: {} })).toEqual(['before: none', 'after: none', 'query: none']);
  });

  it('nothing for no details', () => {
    expect(detailLines({})).toEqual([]);
  });
});
