import { fireEvent, screen, within } from '@testing-library/react';
import { useState } from 'react';
import { describe, expect, it } from 'vitest';
import { renderInConsole } from '../testing/render';
import { PagedTable, type Column } from './PagedTable';

interface Row {
  name: string;
  size: number;
}
const ALL: Row[] = Array.from({ length: 57 }, (_, i) => ({ name: `vm${String(i + 1).padStart(2, '0')}`, size: i }));
const COLUMNS: Column<Row>[] = [
  { header: 'Name', cell: (r) => r.name },
  { header: 'Size', cell: (r) => String(r.size) },
];

/** Pages like the API: the parent holds the page and slices (the server's limit/offset). */
function Harness({ rows = ALL }: { rows?: Row[] }) {
  const [page, setPage] = useState(1);
  return <PagedTable label="VMs" columns={COLUMNS} rows={rows.slice((page - 1) * 20, page * 20)} rowKey={(r) => r.name} total={rows.length} pageSize={20} page={page} onPage={setPage} empty="No VM matches." />;
}

const bodyRows = () => within(screen.getByRole('table', { name: 'VMs' })).getAllByRole('row').slice(1);

describe('PagedTable', () => {
  it('shows one page, counts every match, and pages with the pager', () => {
    renderInConsole(<Harness />);
    expect(screen.getAllByRole('columnheader').map((h) => h.textContent)).toEqual(['Name', 'Size']);
    expect(bodyRows()).toHaveLength(20);
    expect(bodyRows()[0]?.textContent).toBe('vm010');
    expect(screen.getByText('1–20 of 57')).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'page 3' }));
    expect(bodyRows()).toHaveLength(17);
    expect(bodyRows()[0]?.textContent).toBe('vm4140');
    expect(screen.getByText('41–57 of 57')).toBeTruthy();
  });

  it('says so when nothing matches, instead of an empty table', () => {
    renderInConsole(<Harness rows={[]} />);
    expect(screen.queryByRole('table')).toBeNull();
    expect(screen.getByText('No VM matches.')).toBeTruthy();
  });

  it('has no pager for a single page', () => {
    renderInConsole(<Harness rows={ALL.slice(0, 5)} />);
    expect(screen.queryByRole('button', { name: 'page 1' })).toBeNull();
    expect(screen.getByText('1–5 of 5')).toBeTruthy();
  });
});
