/** Per-write consistency levels: defined with replication (src/replication/consistency.ts). */
export { ConsistencyLevel } from '../replication/consistency.ts';
