/**
 * The layered limiter: which VM backup tasks start now under global, per-host (1 by default),
 * per-datastore, per-repository and per-job limits and per-job backup windows, in which order,
 * and a forecast of whether a run fits its window.
 */
export { DEFAULT_PER_HOST_LIMIT, LAYERS, type ConcurrencyLimits, type Layer, type LimitTable, type TaskPlacement } from './limits.js';
export { inPriorityOrder, planStarts, type PendingTask, type PlanOptions, type RunningTask, type StartPlan } from './plan-starts.js';
export { forecastRun, type Forecast, type ForecastEntry, type ForecastOptions } from './forecast.js';
