/** An object's fields as a two-column table (a snapshot's figures, its consistency record). */
import { Table, Text } from '@mantine/core';
import { formatBytes } from '../format';

/** Byte counts read best in binary units: fields named bytes…/…Bytes/size. */
const isBytes = (key: string) => /^bytes|Bytes$|^size$/.test(key);

function show(key: string, value: unknown): string {
  if (typeof value === 'number') return isBytes(key) ? `${formatBytes(value)} (${value.toLocaleString('en')} B)` : value.toLocaleString('en');
  if (typeof value === 'string' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

export function KeyValues({ label, values }: { label: string; values: Record<string, unknown> | undefined }) {
  const entries = Object.entries(values ?? {});
  if (entries.length === 0) return <Text c="dimmed">Not recorded.</Text>;
  return (
    <Table aria-label={label} verticalSpacing={4} withRowBorders>
      <Table.Tbody>
        {entries.map(([key, value]) => (
          <Table.Tr key={key}>
            <Table.Th scope="row" w="40%">
              {key}
            </Table.Th>
            <Table.Td style={{ wordBreak: 'break-all' }}>{show(key, value)}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}
