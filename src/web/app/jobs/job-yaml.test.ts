import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { formFromJob, formProblems, jobFromForm, updateJobInText } from './job-yaml';

const TEXT = `# Coffer's configuration
repositories:
  - name: main
    url: /srv/repo
jobs:
  # the nightly one
  - name: nightly
    select: { tags: [web] }
    repository: main
    schedule: "mon..fri 22:00"
    timezone: Europe/Berlin
    after: other # keep me
  - name: other
    select: { hosts: [hv2] }
    repository: main
    schedule: daily
`;

describe('a job edited in the configuration text', () => {
  it('changes only the edited job\'s keys, and keeps comments, other keys and other jobs', () => {
    const form = formFromJob(parse(TEXT).jobs[0]);
    expect(form.tags).toBe('web');
    form.names = 'db1, db2';
    form.schedule = '*-*-* 01:00';
    form.windowStart = '22:00';
    form.windowEnd = '06:00';
    form.retention['keep-daily'] = '7';
    form.retention['keep-within'] = '3d';
    const text = updateJobInText(TEXT, 'nightly', jobFromForm(form));
    expect(text).toContain('# the nightly one');
    expect(text).toContain('# keep me');
    const job = parse(text).jobs[0];
    expect(job).toEqual({
      name: 'nightly',
      select: { names: ['db1', 'db2'], tags: ['web'] },
      repository: 'main',
      schedule: '*-*-* 01:00',
      timezone: 'Europe/Berlin',
      after: 'other',
      window: { start: '22:00', end: '06:00' },
      retention: { 'keep-daily': 7, 'keep-within': '3d' },
    });
    expect(parse(text).jobs[1]).toEqual(parse(TEXT).jobs[1]);
  });

  it('removes a key whose field was emptied', () => {
    const form = formFromJob({ select: { tags: ['web'] }, schedule: 'daily', window: { start: '22:00', end: '06:00' }, retention: { 'keep-last': 3 } });
    form.windowStart = '';
    form.windowEnd = '';
    form.retention['keep-last'] = '';
    const job = parse(updateJobInText(TEXT, 'other', jobFromForm(form))).jobs[1];
    expect(job.window).toBeUndefined();
    expect(job.retention).toBeUndefined();
  });

  it('refuses a job that is no longer there, and names the form\'s own problems', () => {
    expect(() => updateJobInText(TEXT, 'gone', jobFromForm(formFromJob({ select: { tags: ['x'] }, schedule: 'daily' })))).toThrow(/no job named gone/);
    const form = formFromJob({ select: {}, schedule: ' ' });
    form.windowStart = '22:00';
    form.concurrent = '0';
    expect(formProblems(form)).toEqual(['The selection is empty: name VMs, tags, hosts or name patterns.', 'The schedule is empty.', 'A window needs both its start and its end.', 'concurrent must be a whole number of at least 1.']);
  });
});
