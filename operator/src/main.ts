// The operator's entry point: wiring only. `node operator/src/main.ts` (Node 24).
import { ConfigError, loadConfig, type OperatorConfig } from './config.ts';
import { makeClients } from './kube/clients.ts';
import { startOperator } from './operator.ts';
import { startHealthServer } from './server.ts';
import { makeLogger } from './telemetry/logger.ts';
import { makeMetrics } from './telemetry/metrics.ts';

let config: OperatorConfig;
try {
  config = loadConfig(process.env, process.argv.slice(2));
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`keystile-operator: ${err.message}\n`);
  process.exit(2);
}
const log = makeLogger(config.logLevel, 'keystile-operator');
const metrics = makeMetrics();
let ready = false;
const health = await startHealthServer(config.healthHost, config.healthPort, metrics.registry, () => ready);
log.info(
  {
    port: health.port,
    identity: config.identity,
    leaderElect: config.leaderElect,
    // Where usage comes from; never the Redis URL (it may carry a password).
    usage: {
      redis: config.usage.redis?.kind,
      endpoints: config.usage.endpoints.length,
      counterStore: config.usage.counterStore,
      intervalMs: config.usage.intervalMs,
      writesPerSecond: config.usage.writesPerSecond,
    },
  },
  'operator starting',
);

const operator = await startOperator(config, makeClients(), log, metrics);
ready = operator.synced();

let stopping = false;
const shutdown = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down');
  operator
    .stop()
    .catch((err: unknown) => log.error({ err: String(err) }, 'error while stopping'))
    .finally(() => {
      health.server.close();
      process.exit(0);
    });
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
