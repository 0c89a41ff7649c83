import { screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { renderInConsole } from '../testing/render';
import { fileRestoreOf, ReportFigures } from './ReportFigures';

/** A file snapshot's restore report as worker/kinds/restore-task.ts writes it. */
const fileRestore = (problems: string[]) => ({
  summary: `restored 3 files (300024 bytes), 4 folders of guest1-files (snapshot 01234567) into /srv/restores/guest1${problems.length > 0 ? `; ${problems.length} not as recorded` : ''}`,
  warnings: problems,
  figures: { files: 3, directories: 4, symlinks: 1, bytes: 300024, problems: problems.length, durationMs: 1234 },
  detail: { snapshot: '0123456789abcdef', vm: 'guest1-files', to: '/srv/restores/guest1', files: 3, directories: 4, symlinks: 1, hardLinks: 0, special: 0, bytes: 300024 },
});

const rows = (table: HTMLElement) => Object.fromEntries(within(table).getAllByRole('row').map((r) => [r.querySelector('th')?.textContent, r.querySelector('td')?.textContent]));

describe('ReportFigures: a task\'s report on its page', () => {
  it('shows a file restore\'s figures in words: where to, files, folders, links, bytes, how long', () => {
    renderInConsole(<ReportFigures report={fileRestore([])} />);
    expect(screen.getByTestId('task-summary').textContent).toMatch(/^restored 3 files/);
    expect(rows(screen.getByRole('table', { name: 'The restored files' }))).toEqual({
      'Restored into': '/srv/restores/guest1',
      Files: '3',
      Folders: '4',
      'Symbolic links': '1',
      'Bytes written': '293 KiB (300,024 B)',
      Duration: '1.2 s',
    });
    expect(screen.queryByRole('table', { name: 'Task figures' })).toBeNull();
    expect(screen.queryByTestId('task-warnings')).toBeNull();
  });

  it('lists the entries not restored as recorded, one a line, with their count, and counts hard links and special files when there were some', () => {
    const report = fileRestore(['/etc/shadow: owner root:shadow not set (not running as root)', '/dev/null: a device node needs root', 'and 3 more entries not restored as recorded']);
    report.figures.problems = 5;
    Object.assign(report.detail, { hardLinks: 2, special: 1 });
    renderInConsole(<ReportFigures report={report} />);
    const shown = rows(screen.getByRole('table', { name: 'The restored files' }));
    expect([shown['Hard links'], shown['Special files (FIFOs, devices)'], shown['Not restored as recorded']]).toEqual(['2', '1', '5']);
    const warnings = screen.getByTestId('task-warnings');
    expect(within(warnings).getByText('Not restored as recorded (5)')).toBeTruthy();
    expect(within(warnings).getAllByRole('listitem').map((li) => li.textContent)).toEqual(report.warnings);
  });

  it('leaves other kinds as they were: a disk restore\'s figures as recorded, a clone\'s identity', () => {
    const disks = { summary: 'restored 1 disk(s) of web1 (snapshot 01234567) to /srv/restores/web1.qcow2 as qcow2', warnings: [], figures: { disks: 1, bytes: 1048576 }, detail: { snapshot: 'x', vm: 'web1', format: 'qcow2', disks: [{ disk: 'vda', path: '/srv/restores/web1.qcow2', bytes: 1048576 }] } };
    expect(fileRestoreOf(disks)).toBeUndefined();
    const view = renderInConsole(<ReportFigures report={disks} />);
    expect(rows(screen.getByRole('table', { name: 'Task figures' }))).toEqual({ disks: '1', bytes: '1.0 MiB (1,048,576 B)' });
    view.unmount();
    renderInConsole(<ReportFigures report={{ summary: 'restored app1 as app1-clone', warnings: ['no MAC address to change'], figures: {}, detail: { clone: { name: 'app1-clone', uuid: 'u', definitionPath: '/srv/restores/app1-clone/app1-clone.xml', disks: [] } } }} />);
    expect(rows(screen.getByRole('table', { name: 'The clone' })).name).toBe('app1-clone');
    expect(within(screen.getByTestId('task-warnings')).getByText('Warnings')).toBeTruthy();
  });
});
