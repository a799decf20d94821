#!/usr/bin/env node
/**
 * The enforcer process: wiring only. Parses the settings, restores the counters, starts the config
 * source, the check ports (HTTP, gRPC), the self-service port, the admin port and the applier of quota
 * adjustments, and on SIGTERM or SIGINT stops taking checks,
 * closes the counter store (a last checkpoint; local counts added to Redis), and exits.
 *
 *   node enforcer/src/main.ts --config keystile-config.json
 *   node enforcer/src/main.ts --config-dir /etc/keystile
 *   node enforcer/src/main.ts --watch-namespace shop --stages orders/prod,orders/beta
 */
import { buildApp } from './app.ts';
import { CatalogLoader } from './catalog/loader.ts';
import { ThresholdParser } from './catalog/parser.ts';
import { DirectorySource } from './catalog/sources/directory-source.ts';
import { FileSource } from './catalog/sources/file-source.ts';
import { ConfigUsageError, type EnforcerConfig, loadConfig, usage } from './config.ts';
import { systemClock } from './decision/clock.ts';
import { decideContext, type DecideOptions } from './decision/decide.ts';
import { ConfigError } from './errors.ts';
import { openStore } from './store/open-store.ts';
import { buildAdminApp } from './telemetry/admin.ts';
import { makeLogger } from './telemetry/logger.ts';
import { EnforcerMetrics } from './telemetry/metrics.ts';
import { Checker } from './transport/checker.ts';
import { startGrpcCheck, stopGrpcCheck } from './transport/grpc-check.ts';
import { buildSelfServiceApp } from './transport/self-service.ts';
import { AdjustmentApplier } from './usage/adjustments.ts';

let config: EnforcerConfig;
try {
  config = loadConfig();
} catch (err) {
  if (!(err instanceof ConfigUsageError)) throw err;
  console.error(`keystile-enforcer: ${err.message}\n\n${usage()}`);
  process.exit(2);
}

const logger = makeLogger(config.logLevel);
const metrics = new EnforcerMetrics(config.metricsKeyId);
const clock = systemClock;

// The counters: memory (restored from --counters-file) or Redis (under --redis-unavailable).
const counters = await openStore(config, { now: () => clock.now(), logger, telemetry: metrics });
const store = counters.store;

// Quota adjustments of the loaded config, applied after every swap (and when a waiting one's period starts).
const applier = new AdjustmentApplier({
  catalog: { current: () => loader.current() },
  store,
  clock,
  logger,
  applied: (plan) => {
    metrics.adjustmentApplied(plan);
  },
});

const parser = new ThresholdParser(config.workerThresholdBytes);
// The parse worker loads its modules while this process starts its servers.
if (config.source.kind !== 'none') parser.prewarm();
const loader = new CatalogLoader(parser, {
  swapped: (catalog, ms) => {
    metrics.swapped(catalog, ms / 1000);
    logger.info(
      {
        generation: catalog.generation,
        keys: catalog.keyCount,
        stages: [...catalog.stages.values()].map((s) => ({
          stage: s.key,
          revision: s.revision,
          keys: s.keyCount,
        })),
        ms: Math.round(ms),
      },
      'config loaded',
    );
    void applier.trigger();
  },
  upToDate: () => {
    metrics.upToDate(clock.now() / 1000);
  },
  refused: (origin, error) => {
    metrics.refused(error.code, clock.now() / 1000);
    const log = error.code === ConfigError.Incomplete ? logger.info.bind(logger) : logger.warn.bind(logger);
    log(
      { origin, reason: error.code, error: error.message },
      'config refused; the last good config keeps serving',
    );
  },
});

const options: DecideOptions = Object.freeze({
  keySources: config.keySources,
  keyPairs: config.keyPairs,
  signature: Object.freeze({
    maxSkewMs: config.signatureMaxSkewMs,
    requireMethodAndPath: config.signatureRequireMethodPath,
  }),
  problemJson: config.problemJson,
  failOpen: config.failOpen,
  stripKey: config.stripKey,
  usageRetentionDays: config.usageRetentionDays,
});
const checker = new Checker({
  catalog: loader,
  store,
  clock,
  context: decideContext(options),
  metrics,
  logger,
});

const source =
  config.source.kind === 'file'
    ? new FileSource(config.source.path, loader, config.pollIntervalMs)
    : config.source.kind === 'dir'
      ? new DirectorySource(config.source.path, loader, config.pollIntervalMs)
      : config.source.kind === 'kube'
        ? // Loaded only in watch mode: @kubernetes/client-node takes a second to import.
          new (await import('./catalog/sources/kube-source.ts')).KubeSource(
            config.source.namespace,
            config.source.stages,
            loader,
            logger,
          )
        : undefined;
if (source === undefined)
  logger.warn(
    config.failOpen
      ? 'no config source: every check is allowed (fail-open) until one is given'
      : 'no config source: every check is answered 503 until one is given',
  );

const http = config.httpPort === undefined ? undefined : buildApp({ checker });
const admin =
  config.adminPort === undefined
    ? undefined
    : buildAdminApp({
        catalog: loader,
        metrics,
        usage: { catalog: loader, store, storeKind: counters.kind, listing: counters.memory, clock },
      });
const selfService =
  config.selfServicePort === undefined
    ? undefined
    : buildSelfServiceApp({ catalog: loader, store, clock, context: checker.context, logger });
const ports: Record<string, number> = {};
if (http && config.httpPort !== undefined) {
  await http.listen({ host: config.checkHost, port: config.httpPort });
  ports['http'] = (http.server.address() as { port: number }).port;
}
const grpc =
  config.grpcPort === undefined
    ? undefined
    : await startGrpcCheck(checker, config.checkHost, config.grpcPort);
if (grpc) ports['grpc'] = grpc.port;
if (selfService && config.selfServicePort !== undefined) {
  await selfService.listen({ host: config.checkHost, port: config.selfServicePort });
  ports['selfService'] = (selfService.server.address() as { port: number }).port;
}
if (admin && config.adminPort !== undefined) {
  await admin.listen({ host: config.adminHost, port: config.adminPort });
  ports['admin'] = (admin.server.address() as { port: number }).port;
}
logger.info({ ...ports, checkHost: config.checkHost, source: config.source }, 'listening');
await source?.start();

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'stopping');
  source?.stop();
  await Promise.allSettled([
    http?.close(),
    grpc && stopGrpcCheck(grpc.server),
    selfService?.close(),
    admin?.close(),
    applier.stop(),
  ]);
  await counters.close();
  await loader.close();
  logger.info('stopped');
  logger.flush();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
