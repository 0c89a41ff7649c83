/**
 * The backup window as a Gantt chart (ECharts custom series): a row per host (and lane), a bar
 * per VM backup from its start to its end, coloured by result, the windows' ends as vertical
 * lines. A click on a bar opens the task. The same facts are in the table beside it (the
 * chart is a picture; keyboard and screen-reader users use the table).
 */
import { useMantineTheme } from '@mantine/core';
import { useMemo } from 'react';
import { EChart, type ChartOption } from '../components/EChart';
import { STATUS_COLOR } from '../components/StatusBadge';
import type { GanttData } from './gantt-data';

const MINUTE = 60_000;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
const clock = (ms: number) => new Date(ms).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' });
const clockSeconds = (ms: number) => new Date(ms).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' });

interface BarItem {
  value: [number, number, number];
  taskId: string;
  name: string;
  itemStyle: { color: string };
}

type RenderApi = { value(i: number): number; coord(point: [number, number]): [number, number]; size(point: [number, number]): [number, number]; style(): Record<string, unknown> };

export function GanttChart({ data, onOpenTask }: { data: GanttData; onOpenTask: (taskId: string) => void }) {
  const theme = useMantineTheme();
  const option = useMemo<ChartOption>(() => {
    const colour = (result: string) => theme.colors[STATUS_COLOR[result] ?? 'gray']?.[6] ?? '#868e96';
    const times = [...data.bars.flatMap((b) => [b.start, b.end]), ...data.windowEnds.map((w) => w.at)];
    // A margin of 5% of the night on each side (at least 30 s, so that short backups stay visible).
    const pad = Math.max(MINUTE / 2, (Math.max(...times) - Math.min(...times)) * 0.05);
    // Over a few minutes (backups run by hand), the axis's ticks are seconds apart: with minutes only they all read the same.
    const tick = Math.max(...times) - Math.min(...times) + 2 * pad < 15 * MINUTE ? clockSeconds : clock;
    const items: BarItem[] = data.bars.map((b) => ({ value: [b.row, b.start, b.end], taskId: b.taskId, name: `${b.vm} (${b.result})`, itemStyle: { color: colour(b.result) } }));
    return {
      animation: false,
      tooltip: {
        formatter: (p: { data?: BarItem; name?: string }) => (p.data === undefined ? (p.name ?? '') : `${p.data.name}<br/>${clockSeconds(p.data.value[1])}–${clockSeconds(p.data.value[2])}`),
      },
      grid: { left: 8, right: 16, top: 24, bottom: 8, containLabel: true },
      xAxis: {
        type: 'time',
        min: Math.min(...times) - pad,
        max: Math.max(...times) + pad,
        axisLabel: { formatter: (v: number) => tick(v) },
      },
      yAxis: { type: 'category', data: data.rows.map((r) => r.label), inverse: true },
      series: [
        {
          type: 'custom',
          name: 'Backups',
          encode: { x: [1, 2], y: 0 },
          data: items,
          renderItem: (_params: unknown, api: RenderApi) => {
            const row = api.value(0);
            const from = api.coord([api.value(1), row]);
            const to = api.coord([api.value(2), row]);
            const height = api.size([0, 1])[1] * 0.6;
            return { type: 'rect', shape: { x: from[0], y: from[1] - height / 2, width: Math.max(3, to[0] - from[0]), height }, style: api.style() };
          },
          markLine: {
            symbol: 'none',
            silent: true,
            lineStyle: { type: 'dashed', color: theme.colors.red[7], width: 2 },
            label: { formatter: (p: { name?: string }) => p.name ?? '', position: 'insideEndTop' },
            data: data.windowEnds.map((w) => ({ xAxis: w.at, name: `window ends ${clock(w.at)}${w.job === null ? '' : ` (${w.job})`}` })),
          },
        },
      ],
    } as ChartOption;
  }, [data, theme]);
  if (data.bars.length === 0) return null;
  return (
    <EChart
      option={option}
      label={`Backup window: ${plural(data.bars.length, 'backup')} on ${plural(new Set(data.rows.map((r) => r.host)).size, 'host')} (details in the table below)`}
      height={Math.max(140, 56 + data.rows.length * 44)}
      onItemClick={(item) => {
        const taskId = (item.data as Partial<BarItem> | undefined)?.taskId;
        if (taskId !== undefined) onOpenTask(taskId);
      }}
    />
  );
}
