/**
 * ECharts with only the chart types the console uses (echarts/core: bars, lines, and a custom
 * series for the backup window timeline), SVG-rendered. Loaded by EChart.tsx with a dynamic
 * import, so the ~500 KB of chart code is fetched only when a page draws a chart, after the
 * page's text is already shown.
 */
import { BarChart, CustomChart, LineChart } from 'echarts/charts';
import { GridComponent, LegendComponent, MarkLineComponent, TooltipComponent } from 'echarts/components';
import * as echarts from 'echarts/core';
import { SVGRenderer } from 'echarts/renderers';

echarts.use([BarChart, CustomChart, LineChart, GridComponent, LegendComponent, MarkLineComponent, TooltipComponent, SVGRenderer]);

export { echarts };
