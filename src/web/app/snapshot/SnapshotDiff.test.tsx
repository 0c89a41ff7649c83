import { fireEvent, screen, within } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { renderInConsole } from '../testing/render';
import { SnapshotDiff, type DiffAnswer } from './SnapshotDiff';

const KiB = 1024;
const ref = (id: string, day: number) => ({ id: `${id}${'0'.repeat(56)}`, shortId: id, vm: 'web1', time: `2026-11-${day}T01:00:00.000Z` });
const letters = (n: Partial<Record<'+' | '-' | 'M' | 'T' | 'U', number>>) => ({ '+': 0, '-': 0, M: 0, T: 0, U: 0, ...n });
const paging = { total: 0, limit: 100, offset: 0, next: null, timedOut: false, truncated: false };

const filesAnswer = (overrides: Partial<DiffAnswer> = {}): DiffAnswer => ({
  kind: 'files',
  a: ref('aaaaaaaa', 23),
  b: ref('bbbbbbbb', 24),
  changes: [
    { change: 'M', path: '/etc/nginx/nginx.conf', type: 'file', size: 2 * KiB },
    { change: '+', path: '/tmp/caf\\xe9', pathBytes: '2f746d702f636166e9', type: 'file', size: 10 },
    { change: 'T', path: '/var/lib/app/data', type: 'directory', was: 'file' },
  ],
  counts: { files: letters({ M: 1, '+': 1 }), directories: letters({ T: 1 }), others: letters({}) },
  bytesAdded: 3 * KiB,
  bytesRemoved: 0,
  treesRead: 6,
  treesSkipped: 2,
  problems: [],
  problemCount: 0,
  ...paging,
  total: 250,
  next: 100,
  truncated: true,
  ...overrides,
});

describe('SnapshotDiff: what changed between two snapshots', () => {
  it('lists a file snapshot\'s changed paths with their letters, a Latin-1 name as \\xNN with its bytes, and the counts', () => {
    renderInConsole(<SnapshotDiff answer={filesAnswer()} onPage={() => {}} />);
    const rows = screen.getAllByTestId('diff-change');
    expect(rows.map((r) => r.textContent)).toEqual(['M/etc/nginx/nginx.conf2.0 KiB', '+/tmp/caf\\xe910 B', 'T/var/lib/app/data/ (was a file)']);
    expect(within(rows[1] as HTMLElement).getByText('/tmp/caf\\xe9').getAttribute('title')).toBe('bytes: 2f746d702f636166e9');
    expect(within(rows[0] as HTMLElement).getByLabelText('content modified').textContent).toBe('M');
    expect(screen.getByTestId('diff-counts').textContent).toBe('Files: 1 added, 0 removed, 1 modified, 0 type changed, 0 metadata onlyFolders: 0 added, 0 removed, 0 modified, 1 type changed, 0 metadata only');
    expect(screen.queryByTestId('diff-timed-out')).toBeNull();
  });

  it('pages: says which paths of how many it shows, and asks for the next and previous pages', () => {
    const page = vi.fn();
    const { unmount } = renderInConsole(<SnapshotDiff answer={filesAnswer()} onPage={page} />);
    expect(screen.getByTestId('diff-pager').textContent).toMatch(/^Changed paths 1–3 of 250/);
    expect(screen.queryByRole('button', { name: 'Previous' })).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    expect(page).toHaveBeenCalledWith(100);
    unmount();
    renderInConsole(<SnapshotDiff answer={filesAnswer({ offset: 200, next: null })} onPage={page} />);
    expect(screen.getByTestId('diff-pager').textContent).toMatch(/^Changed paths 201–203 of 250/);
    expect(screen.queryByRole('button', { name: 'Next' })).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Previous' }));
    expect(page).toHaveBeenLastCalledWith(100);
  });

  it('VM snapshots: each disk\'s changed bytes and the first ranges (the rest counted), the totals, and each volume\'s files', () => {
    const answer: DiffAnswer = {
      kind: 'disks',
      a: ref('aaaaaaaa', 23),
      b: ref('bbbbbbbb', 24),
      disks: [
        {
          name: 'disk0', change: 'changed', sizeA: 4096 * KiB, sizeB: 4096 * KiB, blockSize: 256 * KiB, changedBlocks: 9, zeroedBlocks: 1, changedBytes: 9 * 256 * KiB,
          ranges: [0, 1, 2, 3, 4, 5].map((i) => ({ offset: i * 512 * KiB, length: 256 * KiB })), rangeCount: 9, pagesRead: 2, pagesSkipped: 0,
        },
        { name: 'disk1', change: 'removed', sizeA: 1024 * KiB },
      ],
      totals: { changedBlocks: 9, changedBytes: 9 * 256 * KiB, zeroedBlocks: 1, disksChanged: 1, disksAdded: 0, disksRemoved: 1, disksResized: 0, pagesRead: 2, pagesSkipped: 0 },
      volumes: [
        { volume: 'p1', disk: 'disk0', change: 'compared', filesystem: 'ext4', changedBytes: 512 * KiB, changes: [{ change: '-', path: '/docs/private.key', type: 'file', size: 100 }], counts: { files: letters({ '-': 1 }), directories: letters({}), others: letters({}) }, bytesAdded: 0, bytesRemoved: 100, problems: [], problemCount: 0, complete: true },
        { volume: 'p2', disk: 'disk0', change: 'unchanged', changedBytes: 0, changes: [], complete: true },
      ],
      ...paging,
      total: 1,
    };
    renderInConsole(<SnapshotDiff answer={answer} onPage={() => {}} />);
    const disks = within(screen.getByTestId('diff-disks')).getAllByRole('row').map((r) => r.textContent);
    expect(disks[1]).toBe('disk0changed4.0 MiB2.3 MiB in 9 blocks of 256 KiB (1 now zeros)at 0 B (256 KiB), at 512 KiB (256 KiB), at 1.0 MiB (256 KiB), at 1.5 MiB (256 KiB), at 2.0 MiB (256 KiB) and 4 more ranges');
    expect(disks[2]).toBe('disk1removed1.0 MiB–');
    expect(screen.getByTestId('diff-totals').textContent).toBe('In all: 2.3 MiB changed in 9 blocks on 1 disk; 1 disk removed (from the disk indexes: no data read).');
    const volumes = screen.getAllByTestId('diff-volume');
    expect(within(volumes[0] as HTMLElement).getByRole('heading').textContent).toBe('Volume p1 on disk0 (ext4): 512 KiB changed');
    expect(within(volumes[0] as HTMLElement).getAllByTestId('diff-change').map((r) => r.textContent)).toEqual(['-/docs/private.key100 B']);
    expect(within(volumes[1] as HTMLElement).getByRole('heading').textContent).toBe('Volume p2 on disk0: no byte changed (not read)');
    expect(screen.getByTestId('diff-pager').textContent).toBe('Changed paths 1–1 of 1');
  });

  it('a comparison stopped at the server\'s time limit says so, and its counts are what was found so far', () => {
    renderInConsole(<SnapshotDiff answer={filesAnswer({ timedOut: true, total: 3, next: null, bytesAdded: undefined, bytesRemoved: undefined, problems: undefined })} onPage={() => {}} />);
    expect(screen.getByTestId('diff-timed-out').textContent).toMatch(/took longer than the server allows one request/);
    expect(screen.getByTestId('diff-pager').textContent).toBe('Changed paths 1–3 of 3 found so far');
  });
});
