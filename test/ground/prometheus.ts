import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { type GroundContext, partDir, waitReady } from './context.ts';
import { get } from './http-probe.ts';

// Prometheus from Debian's package, scraping the local system.

/** The folder of Prometheus file-based service discovery: later parts drop `<job>.json` target files here. */
export function prometheusTargetsDir(ctx: GroundContext): string {
  return join(partDir(ctx, 'prometheus'), 'targets');
}

/**
 * Registers a scrape target with the local Prometheus (picked up without a restart). `labels`: target
 * labels besides `job`, as a scrape configuration's relabeling would add them.
 */
export function addPrometheusTarget(
  ctx: GroundContext,
  job: string,
  port: number,
  metricsPath = '/metrics',
  labels: Readonly<Record<string, string>> = {},
): void {
  const dir = prometheusTargetsDir(ctx);
  mkdirSync(dir, { recursive: true });
  const targets = [
    { targets: [`127.0.0.1:${port}`], labels: { ...labels, job, __metrics_path__: metricsPath } },
  ];
  writeFileSync(join(dir, `${job}.json`), JSON.stringify(targets, null, 2));
}

/** Starts Prometheus (Debian's) scraping itself and every file in {@link prometheusTargetsDir}. */
export function startPrometheus(ctx: GroundContext): void {
  const dir = partDir(ctx, 'prometheus');
  mkdirSync(join(dir, 'data'), { recursive: true });
  addPrometheusTarget(ctx, 'prometheus', ctx.ports.prometheus);
  addPrometheusTarget(ctx, 'envoy', ctx.ports.envoyAdmin, '/stats/prometheus');
  addPrometheusTarget(ctx, 'keystile-operator', ctx.ports.operator);
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    stringify({
      global: { scrape_interval: '2s', evaluation_interval: '2s' },
      scrape_configs: [
        {
          job_name: 'local',
          file_sd_configs: [{ files: [join(prometheusTargetsDir(ctx), '*.json')], refresh_interval: '2s' }],
        },
      ],
    }),
  );
  ctx.procs.start({
    name: 'prometheus',
    command: ctx.bins.prometheus,
    args: [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${ctx.ports.prometheus}`,
      '--storage.tsdb.retention.time=2d',
      '--log.level=warn',
    ],
  });
}

/** Waits until Prometheus says it is ready. */
export async function prometheusReady(ctx: GroundContext): Promise<void> {
  await waitReady(
    ctx,
    'prometheus',
    async () => (await get(`http://127.0.0.1:${ctx.ports.prometheus}/-/ready`)).status === 200,
  );
}
