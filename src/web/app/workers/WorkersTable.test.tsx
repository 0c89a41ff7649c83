import { fireEvent, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { renderInConsole } from '../testing/render';
import { heartbeatAge, WorkersTable, workerState, type WorkerRow } from './WorkersTable';

const NOW = Date.parse('2026-11-26T22:00:00Z');
const base: WorkerRow = {
  name: 'dc1-w1', hosts: ['hv1', 'hv2'], capacity: 4, version: '0.1.0', machine: 'proxy1', pid: 4242,
  started: '2026-11-26T20:00:00Z', lastHeartbeat: '2026-11-26T21:59:48Z', stopped: null,
  alive: true, draining: false, tasksRunning: 2, tasksDone: 17, bytesRead: 3 * 1024 ** 3, throughput: 5 * 1024 ** 2,
};
const WORKERS: WorkerRow[] = [
  base,
  { ...base, name: 'dc1-w2', hosts: null, draining: true, tasksRunning: 1 },
  { ...base, name: 'dc2-w1', alive: false, lastHeartbeat: '2026-11-26T21:40:00Z', tasksRunning: 0 },
  { ...base, name: 'dc2-w2', alive: false, stopped: '2026-11-26T21:30:00Z', tasksRunning: 0 },
];
const row = (name: string) => within(screen.getByRole('table', { name: 'Workers' })).getByText(name).closest('tr') as HTMLElement;

describe('WorkersTable', () => {
  it('shows each worker\'s hosts, state, tasks of its slots, throughput and heartbeat age', () => {
    renderInConsole(<WorkersTable workers={WORKERS} now={NOW} canDrain={false} onDrain={() => undefined} />);
    const cells = within(row('dc1-w1')).getAllByRole('cell').map((c) => c.textContent);
    expect(cells.slice(1)).toEqual(['hv1, hv2', 'working', '2 of 4', '17', '5.0 MiB/s (3.0 GiB read)', '12 s ago', '']);
    expect(within(row('dc1-w1')).getAllByRole('cell')[0]?.textContent).toBe('dc1-w1proxy1, pid 4242 · 0.1.0');
    expect(within(row('dc1-w2')).getAllByRole('cell').map((c) => c.textContent).slice(1, 3)).toEqual(['every host', 'draining']);
    expect(within(row('dc2-w1')).getAllByRole('cell').map((c) => c.textContent).slice(2, 3)).toEqual(['silent']);
    expect(within(row('dc2-w1')).getAllByRole('cell')[6]?.textContent).toBe('20 min ago');
    expect(within(row('dc2-w2')).getAllByRole('cell').map((c) => c.textContent).slice(2, 3)).toEqual(['stopped']);
    expect(screen.queryByRole('button', { name: /Drain/ })).toBeNull();
  });

  it('offers Drain only to who may drain, and only on a working worker', () => {
    const drained: string[] = [];
    renderInConsole(<WorkersTable workers={WORKERS} now={NOW} canDrain onDrain={(name) => drained.push(name)} />);
    expect(screen.getAllByRole('button', { name: /^Drain worker/ }).map((b) => b.getAttribute('aria-label'))).toEqual(['Drain worker dc1-w1']);
    fireEvent.click(screen.getByRole('button', { name: 'Drain worker dc1-w1' }));
    expect(drained).toEqual(['dc1-w1']);
  });

  it('with no worker, says why there is none and what to start', () => {
    renderInConsole(<WorkersTable workers={[]} now={NOW} canDrain onDrain={() => undefined} />);
    expect(screen.getByText(/No worker shares this server's state database/).textContent).toMatch(/start coffer worker near the hypervisors/);
  });

  it('workerState and heartbeatAge', () => {
    expect(WORKERS.map(workerState)).toEqual(['working', 'draining', 'silent', 'stopped']);
    expect(heartbeatAge('2026-11-26T21:58:01Z', NOW)).toBe('119 s ago');
    expect(heartbeatAge('2026-11-26T19:55:00Z', NOW)).toBe('2 h 5 min ago');
    expect(heartbeatAge('2026-11-26T22:00:03Z', NOW)).toBe('0 s ago');
  });
});
