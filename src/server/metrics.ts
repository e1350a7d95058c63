/**
 * Prometheus metrics of one server. Each server has its own Registry (tests
 * run several in one process; the global registry would mix them). The
 * output passes `promtool check metrics` (test/server/metrics.test.ts); the
 * metrics are listed in docs/operations.md.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ReplicationStatus } from '../node/types.ts';

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
    // prom-client's defaults include gauges named *_total (active handles,
    // requests, resources), which Prometheus reserves for counters; each is
    // the sum of the per-type gauge next to it: sum(vrep_nodejs_active_handles).
    for (const metric of this.registry.getMetricsAsArray()) {
      const { name, type } = metric as unknown as { name: string; type: string };
      if (name.endsWith('_total') && type !== 'counter') this.registry.removeSingleMetric(name);
    }
  }

  /**
   * Replication figures, read from the node at each scrape (nothing to keep
   * in sync between scrapes). `status` returns null while the node starts.
   */
  observeNode(status: () => ReplicationStatus | null, walFsyncMs: () => readonly number[]): void {
    const registers = [this.registry];
    const nodeGauge = (name: string, help: string, pick: (s: ReplicationStatus) => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const s = status();
          if (s) this.set(pick(s));
        },
      });
    };
    // The node keeps running totals; a Prometheus counter may only go up, so
    // each scrape adds what the total grew by. A total that went down (its
    // source was replaced, e.g. on a role change) is taken as a new start.
    const nodeCounter = (name: string, help: string, pick: (s: ReplicationStatus) => number): void => {
      let seen = 0;
      new Counter({
        name,
        help,
        registers,
        collect() {
          const s = status();
          if (!s) return;
          const total = pick(s);
          if (total > seen) this.inc(total - seen);
          seen = total;
        },
      });
    };
    nodeGauge('vrep_last_lsn', "Last LSN in this node's log", (s) => s.last_lsn);
    nodeGauge('vrep_term', 'Current term', (s) => s.term);
    nodeGauge(
      'vrep_log_first_lsn',
      "The retention window: the earliest LSN this node's log holds (a change stream from before it is refused)",
      (s) => s.retention.first_lsn,
    );
    nodeCounter(
      'vrep_replication_full_syncs_total',
      'Full syncs (served or received)',
      (s) => s.stats.full_syncs,
    );
    nodeCounter('vrep_replication_partial_syncs_total', 'Partial resyncs', (s) => s.stats.partial_syncs);
    nodeCounter(
      'vrep_snapshots_total',
      'Snapshots this node built (automatic, on request, for full syncs)',
      (s) => s.stats.snapshots_taken,
    );
    nodeCounter(
      'vrep_truncated_records_total',
      'Records dropped from the log as a divergent tail (each listed in a file under lost/)',
      (s) => s.stats.truncated_records,
    );
    nodeCounter(
      'vrep_elections_total',
      'Role auto: campaigns this node stood in (after a successful pre-vote)',
      (s) => s.election?.campaigns ?? 0,
    );
    nodeCounter(
      'vrep_step_downs_total',
      'Role auto: times this node stepped down as primary (a newer term, or it lost the majority)',
      (s) => s.election?.step_downs ?? 0,
    );
    nodeGauge('vrep_snapshot_bytes', "Size of this node's newest snapshot", (s) => s.stats.snapshot_size);
    nodeCounter('vrep_replication_sent_bytes_total', 'Bytes sent on peer links', (s) => s.stats.bytes_sent);
    nodeCounter(
      'vrep_replication_received_bytes_total',
      'Bytes received on peer links',
      (s) => s.stats.bytes_received,
    );
    nodeCounter(
      'vrep_replication_frames_rejected_total',
      'Peer frames refused (bad checksum, size, sequence)',
      (s) => s.stats.frames_rejected,
    );
    nodeCounter(
      'vrep_replication_slow_peer_disconnects_total',
      'Peers disconnected for not draining',
      (s) => s.stats.slow_peer_disconnects,
    );
    nodeCounter(
      'vrep_replication_compression_skipped_total',
      'RECORDS payloads sent uncompressed because compression did not pay',
      (s) => s.stats.compression_skipped,
    );
    nodeGauge(
      'vrep_replication_compression_saving_ratio',
      'Share of the bytes compression saved on recent RECORDS payloads it was tried on (0 until tried)',
      (s) => s.stats.compression_saving ?? 0,
    );
    nodeGauge(
      'vrep_replication_lag_operations',
      'Replica: operations behind its primary; primary: the largest among replicas',
      (s) => s.stats.lag_operations,
    );
    nodeGauge(
      'vrep_replication_lag_seconds',
      'Replica: age of the oldest write it lacks; primary: the largest among replicas',
      (s) => s.stats.lag_ms / 1000,
    );
    const perReplica = (
      name: string,
      help: string,
      pick: (r: ReplicationStatus['replicas'][number]) => number,
    ): void => {
      new Gauge({
        name,
        help,
        labelNames: ['replica'] as const,
        registers,
        collect() {
          this.reset();
          for (const r of status()?.replicas ?? []) this.set({ replica: r.id }, pick(r));
        },
      });
    };
    perReplica(
      'vrep_replica_lag_operations',
      'Operations a replica has not acknowledged',
      (r) => r.lag_operations,
    );
    perReplica(
      'vrep_replica_lag_seconds',
      'Age of the oldest write a replica has not acknowledged',
      (r) => r.lag_ms / 1000,
    );
    perReplica('vrep_replica_acked_lsn', 'Last LSN a replica acknowledged', (r) => r.offset);
    perReplica('vrep_replica_connected', '1 when the replica is Connected, Syncing or Lagging', (r) =>
      r.status === 'Disconnected' ? 0 : 1,
    );
    const perGroup = (
      name: string,
      help: string,
      pick: (g: ReplicationStatus['groups'][number]) => number,
    ): void => {
      new Gauge({
        name,
        help,
        labelNames: ['group'] as const,
        registers,
        collect() {
          this.reset();
          for (const g of status()?.groups ?? []) this.set({ group: g.name }, pick(g));
        },
      });
    };
    perGroup(
      'vrep_consumer_group_position_lsn',
      "A consumer group's committed position (LSN; 0 before its first commit)",
      (g) => g.position?.lsn ?? 0,
    );
    perGroup(
      'vrep_consumer_group_members',
      'Members of a consumer group reading on this node',
      (g) => g.members,
    );
    perGroup(
      'vrep_consumer_group_lagged_out',
      "1 when a group's position fell out of the retention window (resuming it is refused)",
      (g) => (g.lagged_out ? 1 : 0),
    );
    nodeGauge(
      'vrep_streams_max_retained_bytes',
      'WAL bytes change streams and consumer groups may hold back (streams.max_retained_bytes)',
      (s) => s.retention.max_retained_bytes,
    );
    new Gauge({
      name: 'vrep_wal_fsync_seconds_max',
      help: 'Slowest of the recent WAL fsyncs',
      registers,
      collect() {
        const recent = walFsyncMs();
        if (recent.length > 0) this.set(Math.max(...recent) / 1000);
      },
    });
  }

  /** Prometheus text exposition: one family after another (Registry.metrics() puts a blank line between them). */
  async render(): Promise<{ text: string; contentType: string }> {
    const families = await Promise.all(
      this.registry.getMetricsAsArray().map((m) => this.registry.getSingleMetricAsString(m.name)),
    );
    // prom-client prints a gauge with no samples yet (the event-loop lag right after a reset) as
    // "Nan"; the text format spells it NaN.
    const text = `${families.join('\n')}\n`.replace(/ Nan$/gm, ' NaN');
    return { text, contentType: this.registry.contentType };
  }
}
