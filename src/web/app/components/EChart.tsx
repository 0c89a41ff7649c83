/**
 * An ECharts chart in a div, following the colour scheme, resized with its box. Only the
 * chart types the console uses are bundled (echarts/core: bars, lines, and a custom series for
 * the backup window timeline). The chart is a picture: the figures
 * it shows must also be on the page as text (`label` names it for screen readers).
 */
import { useComputedColorScheme } from '@mantine/core';
import { BarChart, CustomChart, LineChart } from 'echarts/charts';
import { GridComponent, LegendComponent, MarkLineComponent, TooltipComponent } from 'echarts/components';
import * as echarts from 'echarts/core';
import { SVGRenderer } from 'echarts/renderers';
import { useEffect, useRef } from 'react';

echarts.use([BarChart, CustomChart, LineChart, GridComponent, LegendComponent, MarkLineComponent, TooltipComponent, SVGRenderer]);

export type ChartOption = echarts.EChartsCoreOption;

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
  useEffect(() => {
    const element = box.current;
    if (element === null) return;
    const chart = echarts.init(element, scheme === 'dark' ? 'dark' : undefined, { renderer: 'svg' });
    chart.setOption({ backgroundColor: 'transparent', ...option });
    chart.on('click', (params) => clicked.current?.(params as unknown as ChartClick));
    const observer = new ResizeObserver(() => chart.resize());
    observer.observe(element);
    return () => {
      observer.disconnect();
      chart.dispose();
    };
  }, [option, scheme]);
  return <div ref={box} role="img" aria-label={label} style={{ width: '100%', height }} />;
}
