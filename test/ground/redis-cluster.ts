/**
 * A Redis Cluster of a test's own: `masters` redis-server processes (Debian's binary) with
 * `--cluster-enabled yes` on loopback ports, the 16384 slots split between them by CLUSTER ADDSLOTSRANGE
 * and joined by CLUSTER MEET (what `redis-cli --cluster create` does, without needing redis-cli), ready
 * once every node reports `cluster_state:ok`. No replicas: a test that stops a node stops its slots.
 */
import { Redis } from 'ioredis';
import { freePort } from '../../enforcer/src/launch.ts';
import { RedisServer } from './redis.ts';
import { waitFor } from './wait.ts';

/** The number of hash slots of a Redis Cluster. */
const SLOTS = 16384;

/** A running cluster. */
export class RedisCluster {
  /** The masters, in slot order (node i serves the i-th share of the slots). */
  readonly nodes: readonly RedisServer[];

  private constructor(nodes: readonly RedisServer[]) {
    this.nodes = nodes;
  }

  /** Starts `masters` (default 3) nodes and forms the cluster. */
  static async start(masters = 3): Promise<RedisCluster> {
    const nodes: RedisServer[] = [];
    const busPorts: number[] = [];
    try {
      for (let i = 0; i < masters; i++) {
        // The cluster bus port is a free one of its own: by default it is the port + 10000, which
        // nothing checked was free (an ephemeral port in use there failed the node's start).
        const busPort = await freePort();
        busPorts.push(busPort);
        nodes.push(
          await RedisServer.start({
            args: [
              '--cluster-port',
              String(busPort),
              '--cluster-enabled',
              'yes',
              '--cluster-config-file',
              'nodes.conf',
              '--cluster-node-timeout',
              '2000',
            ],
          }),
        );
      }
      const admins = nodes.map(
        (n) => new Redis(n.port, '127.0.0.1', { lazyConnect: false, maxRetriesPerRequest: 1 }),
      );
      try {
        await Promise.all(
          admins.map((admin, i) => {
            const first = Math.floor((SLOTS * i) / masters);
            const last = Math.floor((SLOTS * (i + 1)) / masters) - 1;
            return admin.call('CLUSTER', 'ADDSLOTSRANGE', String(first), String(last));
          }),
        );
        const [seed] = admins;
        for (const [i, n] of nodes.entries())
          if (i > 0) await seed?.call('CLUSTER', 'MEET', '127.0.0.1', String(n.port), String(busPorts[i]));
        await waitFor(
          `a Redis Cluster of ${masters} nodes`,
          async () => {
            const infos = await Promise.all(admins.map((a) => a.call('CLUSTER', 'INFO') as Promise<string>));
            return infos.every(
              (info) => info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${masters}`),
            );
          },
          20_000,
          50,
        );
      } finally {
        for (const admin of admins) admin.disconnect();
      }
      return new RedisCluster(nodes);
    } catch (err) {
      await Promise.all(nodes.map((n) => n.stop()));
      throw err;
    }
  }

  /** The nodes as `{host, port}`, for `new Cluster(...)` or `--redis-cluster-nodes`. */
  get seeds(): { host: string; port: number }[] {
    return this.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
  }

  /** Stops every node (SIGKILL: nothing to save). */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}
