/**
 * `/metrics` for Prometheus: the last successful backup of each VM (time, bytes, duration),
 * tasks by kind and status, repository sizes, and notification deliveries. The figures come
 * from a {@link MetricsSource} (the notifier's record); `registerMetricsRoute` mounts the
 * route on the service's Fastify instance, with its own bearer token.
 */
export { CofferMetrics, type CofferMetricsOptions } from './coffer-metrics.js';
export { registerMetricsRoute, type MetricsRouteOptions } from './metrics-route.js';
export type { MetricsFiguresInput, MetricsSource } from './metrics-source.js';
