import { fireEvent, screen } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { renderInConsole } from '../testing/render';
import { FileSearchResults } from './FileSearch';

const night = (day: number) => `2026-11-${String(day).padStart(2, '0')}T01:00:00.000Z`;
const snap = (day: number, matches: number) => ({ repository: 'main', snapshot: `s${day}`, time: night(day), matches });
const match = (day: number, volume: string) => ({ repository: 'main', snapshot: `s${day}`, time: night(day), volume, path: '/docs/report.docx', type: 'file', size: 2048, mtime: null });

describe('FileSearchResults: which night still had this file', () => {
  it('names the newest snapshot that has the file, and says the newer ones do not', () => {
    const open = vi.fn();
    renderInConsole(
      <FileSearchResults
        name="report.docx"
        answer={{ items: [match(23, 'p1'), match(22, 'p1')], snapshots: 4, searched: 4, searchedSnapshots: [snap(25, 0), snap(24, 0), snap(23, 1), snap(22, 1)], truncated: false, next: null }}
        onOpen={open}
        onOlder={() => {}}
      />,
    );
    expect(screen.getByTestId('search-summary').textContent).toMatch(/^The newest snapshot that has “report\.docx” is from .*; not in the 2 newer snapshots above\.$/);
    const rows = screen.getAllByTestId('search-snapshot');
    expect(rows.map((r) => r.getAttribute('data-matches'))).toEqual(['0', '0', '1', '1']);
    expect(rows[0]?.textContent).toMatch(/not in this snapshot$/);
    expect(rows[2]?.textContent).toContain('p1/docs/report.docx (2.0 KiB)');
    fireEvent.click(screen.getAllByRole('button', { name: 'open this snapshot' })[0] as HTMLElement);
    expect(open).toHaveBeenCalledWith('main', 's23');
    expect(screen.queryByRole('button', { name: 'Search older snapshots' })).toBeNull();
  });

  it('says when the newest snapshot has it, and offers the older snapshots', () => {
    const older = vi.fn();
    renderInConsole(<FileSearchResults name="report.docx" answer={{ items: [match(25, 'p1')], snapshots: 30, searched: 1, searchedSnapshots: [snap(25, 1)], truncated: false, next: 1 }} onOpen={() => {}} onOlder={older} />);
    expect(screen.getByTestId('search-summary').textContent).toMatch(/^The newest snapshot searched has “report\.docx” \(/);
    fireEvent.click(screen.getByRole('button', { name: 'Search older snapshots' }));
    expect(older).toHaveBeenCalledWith(1);
  });

  it('lists every snapshot searched when none has it', () => {
    renderInConsole(<FileSearchResults name="gone.txt" answer={{ items: [], snapshots: 2, searched: 2, searchedSnapshots: [snap(25, 0), snap(24, 0)], truncated: true, next: null }} onOpen={() => {}} onOlder={() => {}} />);
    expect(screen.getByTestId('search-summary').textContent).toBe('No file named “gone.txt” in the 2 snapshots searched (of 2).');
    expect(screen.getAllByText('not in this snapshot')).toHaveLength(2);
    expect(screen.getByText(/narrow the name/)).toBeTruthy();
  });
});
