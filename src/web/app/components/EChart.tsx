/**
 * An ECharts chart in a div, following the colour scheme, resized with its box. ECharts itself
 * (echarts-setup.ts: only the chart types the console uses) is loaded on first use, in its own
 * file: pages without a chart never fetch it. The chart is a picture: the figures
 * it shows must also be on the page as text (`label` names it for screen readers).
 */
import { useComputedColorScheme } from '@mantine/core';
import type { ECharts, EChartsCoreOption } from 'echarts/core';
import { useEffect, useRef, useState } from 'react';

export type ChartOption = EChartsCoreOption;

/** The chart library, fetched once, on the first chart drawn. */
let library: Promise<typeof import('./echarts-setup')> | undefined;
const loadLibrary = () =>
  (library ??= import('./echarts-setup').catch((error: unknown) => {
    library = undefined; // fetched again by the next chart (the server may be back)
    throw error;
  }));

/** What ECharts passes to a click handler: the clicked item's series data. */
export interface ChartClick {
  seriesIndex?: number;
  dataIndex: number;
  data: unknown;
}

export function EChart({ option, label, height = 220, onItemClick }: { option: ChartOption; label: string; height?: number; onItemClick?: (item: ChartClick) => void }) {
  const box = useRef<HTMLDivElement>(null);
  const scheme = useComputedColorScheme('light');
  const clicked = useRef(onItemClick);
  clicked.current = onItemClick;
  // One chart per colour scheme; a new option is set on it, not a new chart: re-creating it on
  // every option (each live update of the backup window) left moments with no chart at all,
  // where a click on a bar went nowhere.
  const [chart, setChart] = useState<ECharts>();
  useEffect(() => {
    const element = box.current;
    if (element === null) return;
    let undo: (() => void) | undefined;
    let gone = false;
    void loadLibrary().then(({ echarts }) => {
      if (gone) return;
      const made = echarts.init(element, scheme === 'dark' ? 'dark' : undefined, { renderer: 'svg' });
      made.on('click', (params) => clicked.current?.(params as unknown as ChartClick));
      const observer = new ResizeObserver(() => made.resize());
      observer.observe(element);
      setChart(made);
      undo = () => {
        observer.disconnect();
        made.dispose();
      };
    }, () => {
      // The chart stays empty; the figures it draws are on the page as text anyway.
    });
    return () => {
      gone = true;
      setChart(undefined);
      undo?.();
    };
  }, [scheme]);
  useEffect(() => {
    chart?.setOption({ backgroundColor: 'transparent', ...option }, { notMerge: true });
  }, [chart, option]);
  return <div ref={box} role="img" aria-label={label} style={{ width: '100%', height }} />;
}
