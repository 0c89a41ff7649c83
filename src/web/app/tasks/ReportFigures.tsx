/**
 * The report of a task other than a backup (restore, clone, verify, prune, sync…), as the
 * task's page shows it: its summary in words, its figures, its warnings one a line. Two kinds
 * get their own words: a clone (its new name, UUID and definition file), and a file
 * snapshot's restore into a folder (where to, files, folders, links, bytes, how long; its
 * warnings are the entries not restored as recorded, the first 50 listed and the rest counted).
 */
import { Alert, List, Stack, Text } from '@mantine/core';
import { KeyValues } from '../components/KeyValues';
import { formatBytes } from '../format';

/** A file snapshot's restore as its task reports it (worker/kinds/restore-task.ts: `detail`, and `figures.problems`, `durationMs`). */
interface FileRestore {
  to: string;
  files: number;
  directories: number;
  symlinks: number;
  hardLinks: number;
  special: number;
  bytes: number;
  problems: number;
  durationMs: number | undefined;
}

const count = (value: unknown) => (typeof value === 'number' ? value : 0);

/** The file restore a report describes, or undefined for another kind (a disk restore's detail has `disks`, a clone's `clone`). */
export function fileRestoreOf(report: Record<string, unknown>): FileRestore | undefined {
  const detail = report.detail as Record<string, unknown> | null | undefined;
  if (typeof detail !== 'object' || detail === null || typeof detail.to !== 'string' || typeof detail.files !== 'number') return undefined;
  const figures = (typeof report.figures === 'object' && report.figures !== null ? report.figures : {}) as Record<string, unknown>;
  return {
    to: detail.to,
    files: detail.files,
    directories: count(detail.directories),
    symlinks: count(detail.symlinks),
    hardLinks: count(detail.hardLinks),
    special: count(detail.special),
    bytes: count(detail.bytes),
    problems: count(figures.problems),
    durationMs: typeof figures.durationMs === 'number' ? figures.durationMs : undefined,
  };
}

/** The figures in words: the kinds of entries this restore had (hard links and special files only when there were some). */
export function fileRestoreFigures(r: FileRestore): Record<string, string> {
  return {
    'Restored into': r.to,
    Files: r.files.toLocaleString('en'),
    Folders: r.directories.toLocaleString('en'),
    'Symbolic links': r.symlinks.toLocaleString('en'),
    ...(r.hardLinks > 0 ? { 'Hard links': r.hardLinks.toLocaleString('en') } : {}),
    ...(r.special > 0 ? { 'Special files (FIFOs, devices)': r.special.toLocaleString('en') } : {}),
    'Bytes written': r.bytes < 1024 ? formatBytes(r.bytes) : `${formatBytes(r.bytes)} (${r.bytes.toLocaleString('en')} B)`,
    ...(r.problems > 0 ? { 'Not restored as recorded': r.problems.toLocaleString('en') } : {}),
    ...(r.durationMs === undefined ? {} : { Duration: `${(r.durationMs / 1000).toFixed(1)} s` }),
  };
}

export function ReportFigures({ report }: { report: Record<string, unknown> }) {
  const summary = typeof report.summary === 'string' ? report.summary : undefined;
  const figures = typeof report.figures === 'object' && report.figures !== null ? (report.figures as Record<string, unknown>) : {};
  const warnings = Array.isArray(report.warnings) ? report.warnings.filter((w): w is string => typeof w === 'string') : [];
  const clone = (report.detail as { clone?: { name?: unknown; uuid?: unknown; definitionPath?: unknown } } | undefined)?.clone;
  const files = fileRestoreOf(report);
  return (
    <Stack gap="sm">
      {summary !== undefined && (
        <Text size="sm" data-testid="task-summary">
          {summary}
        </Text>
      )}
      {clone !== undefined && <KeyValues label="The clone" values={{ name: clone.name, uuid: clone.uuid, definition: clone.definitionPath }} />}
      {files !== undefined ? <KeyValues label="The restored files" values={fileRestoreFigures(files)} /> : Object.keys(figures).length > 0 && <KeyValues label="Task figures" values={figures} />}
      {warnings.length > 0 && (
        <Alert variant="default" title={files === undefined ? 'Warnings' : `Not restored as recorded (${files.problems.toLocaleString('en')})`} data-testid="task-warnings">
          <List size="sm">
            {warnings.map((w, i) => (
              <List.Item key={i}>{w}</List.Item>
            ))}
          </List>
        </Alert>
      )}
    </Stack>
  );
}
