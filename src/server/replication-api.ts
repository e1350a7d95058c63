/**
 * The replication routes of the HTTP API (docs/http-api.md), Vectorizer's
 * shapes: status, stats and replicas read the node; configure, promote and
 * transfer change its role; force-sync makes a replica start over in full. Errors go through the same mapping as the data
 * routes (http-api.ts errorToReply): a capability the node does not have yet
 * is 501 ERR_UNSUPPORTED with the node's message.
 */
import { VrepError } from '../errors.ts';
import type { HttpRequest, Route } from '../transport/http-server.ts';
import type { ReplicationNode } from '../node/replication-node.ts';
import type { Role } from '../node/types.ts';
import { jsonObject } from './http-api.ts';
import { parseHostPort } from '../transport/address.ts';
import { ROLES } from '../config/schema.ts';
import { show } from '../config/resolve.ts';

export interface ReplicationApiOptions {
  node: ReplicationNode;
}

function invalid(message: string): VrepError {
  return new VrepError('ERR_INVALID_INPUT', message);
}

/** An optional JSON body: none (or an empty one) is `{}`. */
function optionalBody(req: HttpRequest, allowed: readonly string[]): Record<string, unknown> {
  return req.body.length === 0 ? {} : jsonObject(req, allowed);
}

/** `{role?, master_address?}` (`primary_address` is a synonym) → node.configure's argument. */
export function configureChange(body: Record<string, unknown>): {
  role?: Role;
  masterAddress?: string | null;
} {
  const change: { role?: Role; masterAddress?: string | null } = {};
  const role = body['role'];
  if (role !== undefined) {
    const name = role === 'master' ? 'primary' : role;
    if (typeof name !== 'string' || !(ROLES as readonly string[]).includes(name))
      throw invalid(`role: expected one of ${ROLES.join(', ')}, got ${show(role)}`);
    change.role = name as Role;
  }
  if (body['master_address'] !== undefined && body['primary_address'] !== undefined)
    throw invalid('master_address, primary_address: synonyms; send one');
  const address = body['master_address'] !== undefined ? body['master_address'] : body['primary_address'];
  if (address !== undefined) {
    if (address !== null && (typeof address !== 'string' || parseHostPort(address, 1) === undefined))
      throw invalid(`master_address: expected HOST:PORT or null, got ${show(address)}`);
    change.masterAddress = address;
  }
  if (change.role === undefined && change.masterAddress === undefined)
    throw invalid('body: expected at least one of role, master_address');
  return change;
}

export function replicationRoutes(opts: ReplicationApiOptions): Route[] {
  const { node } = opts;
  return [
    {
      method: 'GET',
      pattern: '/replication/status',
      handler: () => ({ status: 200, body: node.replicationStatus() }),
    },
    {
      method: 'GET',
      pattern: '/replication/stats',
      handler: () => ({ status: 200, body: node.replicationStats() }),
    },
    {
      method: 'GET',
      pattern: '/replication/replicas',
      handler: () => {
        const replicas = node.replicas();
        return { status: 200, body: { replicas, count: replicas.length } };
      },
    },
    {
      method: 'POST',
      pattern: '/replication/configure',
      handler: async (req) => {
        await node.configure(configureChange(jsonObject(req, ['role', 'master_address', 'primary_address'])));
        return { status: 200, body: node.replicationStatus() };
      },
    },
    {
      method: 'POST',
      pattern: '/replication/promote',
      handler: async (req) => {
        const force = optionalBody(req, ['force'])['force'] ?? false;
        if (typeof force !== 'boolean') throw invalid(`force: expected true or false, got ${show(force)}`);
        await node.promote({ force });
        return { status: 200, body: node.replicationStatus() };
      },
    },
    {
      method: 'POST',
      pattern: '/replication/transfer',
      handler: async (req) => {
        const to = jsonObject(req, ['to'])['to'];
        if (typeof to !== 'string' || to.length === 0 || to.length > 255)
          throw invalid(`to: expected the node id or address of a replica, got ${show(to)}`);
        await node.transfer(to);
        return { status: 200, body: node.replicationStatus() };
      },
    },
    {
      method: 'POST',
      pattern: '/replication/learners',
      handler: async (req) => {
        const address = jsonObject(req, ['address'])['address'];
        if (typeof address !== 'string') throw invalid(`address: expected HOST:PORT, got ${show(address)}`);
        const id = await node.addLearner(address);
        return { status: 200, body: { id, address, members: node.members() } };
      },
    },
    {
      method: 'POST',
      pattern: '/replication/members/:id/promote',
      handler: async (req) => {
        optionalBody(req, []);
        await node.promoteLearner(req.params['id'] as string);
        return { status: 200, body: { members: node.members() } };
      },
    },
    {
      method: 'DELETE',
      pattern: '/replication/members/:id',
      handler: async (req) => {
        await node.removeReplica(req.params['id'] as string);
        return { status: 200, body: { members: node.members() } };
      },
    },
    {
      method: 'DELETE',
      pattern: '/replication/groups/:name',
      handler: async (req) => {
        const name = req.params['name'] as string;
        if (!(await node.deleteConsumerGroup(name)))
          throw new VrepError('ERR_NOT_FOUND', `consumer group ${name}: no such group`);
        return { status: 200, body: { deleted: name, groups: node.consumerGroupsStatus() } };
      },
    },
    {
      method: 'POST',
      pattern: '/replication/force-sync',
      handler: async (req) => {
        const replica = jsonObject(req, ['replica'])['replica'];
        if (typeof replica !== 'string' || replica.length === 0 || replica.length > 255)
          throw invalid(`replica: expected a replica's node id, got ${show(replica)}`);
        // The primary asks the replica's position again on the same link, and answers it with a full sync (requested, not yet done).
        await node.forceSync(replica);
        return { status: 202, body: { replica, full_sync: 'requested' } };
      },
    },
  ];
}
