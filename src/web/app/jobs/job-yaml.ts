/**
 * A job edited in the configuration's own text: the console reads `GET /config` (its version
 * and YAML text), changes only the job's keys in the YAML document (comments, order and the
 * rest of the file stay as the administrator wrote them; `yaml`'s Document API), and sends
 * the whole text back with `PUT /config {text, expectedVersion}` so that an edit made
 * meanwhile by someone else is refused (409) rather than overwritten.
 *
 * The form's fields are text; {@link jobFromForm} turns them into the job's keys (an empty
 * field removes its key), {@link formFromJob} the other way.
 */
import { isMap, isSeq, parseDocument } from 'yaml';

export const RETENTION_KEYS = ['keep-last', 'keep-hourly', 'keep-daily', 'keep-weekly', 'keep-monthly', 'keep-yearly', 'keep-within'] as const;
export type RetentionKey = (typeof RETENTION_KEYS)[number];

/** A job's retention keys: counts, and `keep-within` as a duration (7d, 1y6m). */
export type RetentionKeys = Partial<Record<Exclude<RetentionKey, 'keep-within'>, number>> & { 'keep-within'?: string };

export interface JobForm {
  names: string;
  tags: string;
  hosts: string;
  globs: string;
  schedule: string;
  timezone: string;
  windowStart: string;
  windowEnd: string;
  concurrent: string;
  retention: Record<RetentionKey, string>;
}

export interface JobKeys {
  select: { names?: string[]; tags?: string[]; hosts?: string[]; globs?: string[] };
  schedule: string;
  timezone?: string;
  window?: { start: string; end: string };
  limits?: { concurrent: number };
  retention?: RetentionKeys;
}

/** What GET /jobs/J answers, as far as the form needs. */
export interface JobLike {
  select: { names?: string[]; tags?: string[]; hosts?: string[]; globs?: string[] };
  schedule: string;
  timezone?: string;
  window?: { start: string; end: string };
  limits?: { concurrent?: number };
  retention?: Partial<Record<string, unknown>>;
}

const list = (text: string) => text.split(',').map((s) => s.trim()).filter((s) => s !== '');

export function formFromJob(job: JobLike): JobForm {
  const r = job.retention ?? {};
  return {
    names: (job.select.names ?? []).join(', '),
    tags: (job.select.tags ?? []).join(', '),
    hosts: (job.select.hosts ?? []).join(', '),
    globs: (job.select.globs ?? []).join(', '),
    schedule: job.schedule,
    timezone: job.timezone ?? 'UTC',
    windowStart: job.window?.start ?? '',
    windowEnd: job.window?.end ?? '',
    concurrent: job.limits?.concurrent === undefined ? '' : String(job.limits.concurrent),
    retention: Object.fromEntries(RETENTION_KEYS.map((k) => [k, r[k] === undefined ? '' : String(r[k])])) as Record<RetentionKey, string>,
  };
}

/** The selection part alone (for the live "which VMs match" preview). */
export function selectFromForm(form: Pick<JobForm, 'names' | 'tags' | 'hosts' | 'globs'>): JobKeys['select'] {
  const out: JobKeys['select'] = {};
  for (const key of ['names', 'tags', 'hosts', 'globs'] as const) {
    const values = list(form[key]);
    if (values.length > 0) out[key] = values;
  }
  return out;
}

/** The retention part alone (for the retention preview); undefined when no rule is set. */
export function retentionFromForm(form: Pick<JobForm, 'retention'>): JobKeys['retention'] {
  const out: RetentionKeys = {};
  for (const key of RETENTION_KEYS) {
    const value = form.retention[key].trim();
    if (value === '') continue;
    if (key === 'keep-within') out[key] = value;
    else out[key] = Number(value);
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

/** Problems the form can see before the server does (the server checks everything again). */
export function formProblems(form: JobForm): string[] {
  const problems: string[] = [];
  if (Object.keys(selectFromForm(form)).length === 0) problems.push('The selection is empty: name VMs, tags, hosts or name patterns.');
  if (form.schedule.trim() === '') problems.push('The schedule is empty.');
  if ((form.windowStart === '') !== (form.windowEnd === '')) problems.push('A window needs both its start and its end.');
  for (const [key, value] of [['concurrent', form.concurrent], ...RETENTION_KEYS.filter((k) => k !== 'keep-within').map((k) => [k, form.retention[k]])] as const) {
    if (value.trim() !== '' && !/^[1-9]\d*$/.test(value.trim())) problems.push(`${key} must be a whole number of at least 1.`);
  }
  return problems;
}

export function jobFromForm(form: JobForm): JobKeys {
  const retention = retentionFromForm(form);
  return {
    select: selectFromForm(form),
    schedule: form.schedule.trim(),
    ...(form.timezone.trim() === '' ? {} : { timezone: form.timezone.trim() }),
    ...(form.windowStart === '' || form.windowEnd === '' ? {} : { window: { start: form.windowStart, end: form.windowEnd } }),
    ...(form.concurrent.trim() === '' ? {} : { limits: { concurrent: Number(form.concurrent) } }),
    ...(retention === undefined ? {} : { retention }),
  };
}

/** The keys the editor owns; any other key of the job (after, verify…) is left as it is. */
const OWNED = ['select', 'schedule', 'timezone', 'window', 'limits', 'retention'] as const;

/**
 * Replaces the editor's keys of job `name` in the configuration text. Throws when the text
 * has no such job (it was renamed or removed meanwhile).
 */
export function updateJobInText(text: string, name: string, keys: JobKeys): string {
  const document = parseDocument(text);
  const jobs = document.get('jobs');
  if (!isSeq(jobs)) throw new Error('the configuration has no jobs list');
  const index = jobs.items.findIndex((item) => isMap(item) && item.get('name') === name);
  if (index === -1) throw new Error(`the configuration has no job named ${name} (renamed or removed meanwhile?)`);
  const job = jobs.items[index];
  if (!isMap(job)) throw new Error(`job ${name} is not a mapping`);
  for (const key of OWNED) {
    const value = keys[key];
    if (value === undefined) job.delete(key);
    else {
      const node = document.createNode(value);
      if (typeof value === 'object' && 'flow' in node) node.flow = key === 'select' || key === 'window' || key === 'limits' || key === 'retention';
      job.set(key, node);
    }
  }
  return document.toString();
}
