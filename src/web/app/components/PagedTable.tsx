/**
 * A list from the API, one page at a time: the columns the page declares, the rows of the
 * current page, "21–40 of 57", and a pager (keyboard-usable buttons). The API pages by
 * `limit`/`offset` and answers `total` (docs/api.md); the caller keeps the page number.
 */
import { Group, Pagination, Table, Text } from '@mantine/core';
import type { ReactNode } from 'react';
import { HorizontalScroll } from './HorizontalScroll';

export interface Column<Row> {
  /** The column's header. */
  header: string;
  /** The cell; plain text or any element. */
  cell: (row: Row) => ReactNode;
}

export interface PagedTableProps<Row> {
  /** Names the table for screen readers, e.g. "Virtual machines". */
  label: string;
  columns: ReadonlyArray<Column<Row>>;
  rows: readonly Row[];
  rowKey: (row: Row) => string;
  /** Every match across pages, as the API counts it. */
  total: number;
  pageSize: number;
  /** 1-based. */
  page: number;
  onPage: (page: number) => void;
  /** Shown instead of an empty table. */
  empty?: ReactNode;
}

export function PagedTable<Row>({ label, columns, rows, rowKey, total, pageSize, page, onPage, empty }: PagedTableProps<Row>) {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  if (total === 0) return <Text c="dimmed">{empty ?? 'Nothing here yet.'}</Text>;
  const first = (page - 1) * pageSize + 1;
  const last = Math.min(total, first + rows.length - 1);
  return (
    <>
      <HorizontalScroll label={`${label} (scrolls sideways)`}>
        <Table striped highlightOnHover verticalSpacing="xs" aria-label={label}>
          <Table.Thead>
            <Table.Tr>
              {columns.map((c) => (
                <Table.Th key={c.header} scope="col">
                  {c.header}
                </Table.Th>
              ))}
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {rows.map((row) => (
              <Table.Tr key={rowKey(row)}>
                {columns.map((c) => (
                  <Table.Td key={c.header}>{c.cell(row)}</Table.Td>
                ))}
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </HorizontalScroll>
      <Group justify="space-between" mt="sm">
        <Text size="sm" c="dimmed" aria-live="polite">
          {first}–{last} of {total}
        </Text>
        {pages > 1 && <Pagination total={pages} value={page} onChange={onPage} size="sm" aria-label={`${label}: pages`} getItemProps={(p) => ({ 'aria-label': `page ${p}` })} />}
      </Group>
    </>
  );
}
