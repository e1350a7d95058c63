/**
 * Prometheus metrics of one server. Each server has its own Registry (tests
 * run several in one process; the global registry would mix them).
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class ServerMetrics {
  readonly registry = new Registry();
  readonly httpRequests = new Counter({
    name: 'vrep_http_requests_total',
    help: 'HTTP requests answered, by route pattern, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  });
  readonly pointsWritten = new Counter({
    name: 'vrep_points_written_total',
    help: 'Points upserted through the HTTP API',
    registers: [this.registry],
  });
  readonly writeBatches = new Counter({
    name: 'vrep_write_batches_total',
    help: 'Write batches (upserts and deletes) committed through the HTTP API',
    labelNames: ['op'] as const,
    registers: [this.registry],
  });
  readonly searchSeconds = new Histogram({
    name: 'vrep_search_duration_seconds',
    help: 'Search latency inside the node (parsing and serialization excluded)',
    buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });

  constructor() {
    // Includes nodejs_eventloop_lag_seconds (and the perf_hooks lag histogram).
    collectDefaultMetrics({ register: this.registry, prefix: 'vrep_' });
  }

  /** Prometheus text exposition. */
  async render(): Promise<{ text: string; contentType: string }> {
    return { text: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}
