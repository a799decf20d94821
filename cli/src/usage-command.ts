/**
 * `keystile usage KEY --from YYYY-MM-DD [--to YYYY-MM-DD]`: a key's requests per day and plan (AWS's
 * GetUsage over a date range), or with `--customer NAME` those of every key of a customer, read from the
 * per-day counters in Redis or from the enforcers' admin ports, as a table, CSV or JSON.
 *
 * The counters are the ones the enforcers keep (`dayKey(plan, subject, day)`): the subject is the key id,
 * or the customer on a plan that counts by customer; a day is the plan's local day (its quota time zone).
 */
import { parseArgs } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { dayKey, planId, type Subject, subjectKey } from '../../contract/src/identity.ts';
import { GROUP, VERSION } from '../../crds/src/index.ts';
import type { ApiKey, UsagePlan } from '../../crds/src/index.ts';
import { describe, isNotFound } from '../../operator/src/kube/errors.ts';
import { parseHostPorts } from '../../enforcer/src/config.ts';
import { loadKubeConfig } from './kubeconfig.ts';
import { type DayReader, enforcerDayReader, enforcerUrl, redisDayReader } from './usage-sources.ts';
import { DEFAULT_RETENTION_DAYS, daysInRange, retentionWarning } from './usage-range.ts';
import {
  formatUsage,
  type PlanUsage,
  USAGE_FORMATS,
  type UsageFormat,
  type UsageScope,
} from './usage-report.ts';

const USAGE = `usage: keystile usage (KEY | --customer NAME) --from YYYY-MM-DD [--to YYYY-MM-DD] [options]
  Requests per day and plan, from the per-day counters the enforcers keep.
  KEY                 an ApiKey in --namespace: its key id and plans are read from its status
  --customer NAME     instead of KEY: every key of the customer, added up per day and plan
  --from, --to        the first and last day, both included (--to defaults to today, UTC); a day is the
                      plan's local day, in its quota time zone
  --plan NAME         only these plans (repeatable; default: the plans the key is bound to now)
  --format F          table (default), csv or json
  --namespace NS      default: the kubeconfig context's namespace, else 'default'
  --redis-url URL     read the shared counters in Redis (default $KEYSTILE_REDIS_URL)
  --redis-cluster-nodes host:port,...   read a Redis Cluster
  --redis-sentinels host:port,... --redis-sentinel-name NAME   read the master a Sentinel names
                      (a Cluster's or the master's password: $KEYSTILE_REDIS_PASSWORD, the sentinels' own:
                      $KEYSTILE_REDIS_SENTINEL_PASSWORD, as the enforcer's; never a flag, which would
                      show in the process list)
  --enforcer URL      ask an enforcer's admin port instead (repeatable; the answers are added up: with the
                      memory store name every enforcer, each once; with the Redis store name one)
  --retention-days N  how long the day counters are kept (default ${DEFAULT_RETENTION_DAYS}): a range reaching further back warns`;

/** Where the command writes, and what it reads the cluster and the clock with. */
export interface UsageIo {
  readonly out: (text: string) => void;
  readonly err: (line: string) => void;
  readonly kubeConfig?: KubeConfig;
  readonly now?: () => Date;
  readonly env?: Readonly<Record<string, string | undefined>>;
}

const DEFAULT_IO: UsageIo = {
  out: (t) => process.stdout.write(t),
  err: (l) => console.error(l),
};

/** Runs the command; resolves to the exit code (0, 1 when a source or the cluster fails, 2 on usage). */
export async function usageCommand(argv: readonly string[], io: UsageIo = DEFAULT_IO): Promise<number> {
  const env = io.env ?? process.env;
  const today = (io.now?.() ?? new Date()).toISOString().slice(0, 10);
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        customer: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        plan: { type: 'string', multiple: true, default: [] },
        format: { type: 'string', default: 'table' },
        namespace: { type: 'string', short: 'n' },
        'redis-url': { type: 'string' },
        'redis-cluster-nodes': { type: 'string' },
        'redis-sentinels': { type: 'string' },
        'redis-sentinel-name': { type: 'string' },
        enforcer: { type: 'string', multiple: true, default: [] },
        'retention-days': { type: 'string', default: String(DEFAULT_RETENTION_DAYS) },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    io.err(`keystile usage: ${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    io.out(`${USAGE}\n`);
    return 0;
  }
  const usageError = (message: string): number => {
    io.err(`keystile usage: ${message}`);
    return 2;
  };
  const key = positionals[0];
  if (positionals.length > 1) return usageError(`one KEY at most, got ${positionals.join(' ')}`);
  if ((key === undefined) === (values.customer === undefined))
    return usageError('name a KEY or --customer NAME (one of them)');
  if (values.from === undefined) return usageError('--from YYYY-MM-DD is required');
  const format = values.format as UsageFormat;
  if (!USAGE_FORMATS.includes(format))
    return usageError(`--format must be one of ${USAGE_FORMATS.join(', ')}`);
  const retention = Number(values['retention-days']);
  if (!Number.isInteger(retention) || retention < 1)
    return usageError('--retention-days must be a whole number of days, at least 1');
  let days: string[];
  try {
    days = daysInRange(values.from, values.to ?? today);
  } catch (err) {
    return usageError(err instanceof Error ? err.message : String(err));
  }

  const enforcers = values.enforcer;
  const clusterNodes = values['redis-cluster-nodes'];
  const sentinels = values['redis-sentinels'];
  const sentinelName = values['redis-sentinel-name'];
  const redisUrl = values['redis-url'];
  const password = env['KEYSTILE_REDIS_PASSWORD'] || undefined;
  const sentinelPassword = env['KEYSTILE_REDIS_SENTINEL_PASSWORD'] || undefined;
  const explicit = [
    enforcers.length > 0,
    clusterNodes !== undefined,
    sentinels !== undefined,
    redisUrl !== undefined,
  ].filter(Boolean).length;
  if (explicit > 1)
    return usageError(
      'read from one source: --enforcer, --redis-url, --redis-cluster-nodes or --redis-sentinels',
    );
  if (sentinels !== undefined && !sentinelName)
    return usageError('--redis-sentinels needs --redis-sentinel-name (the master name)');
  if (sentinelName !== undefined && sentinels === undefined)
    return usageError('--redis-sentinel-name applies only with --redis-sentinels');
  for (const e of enforcers) {
    try {
      enforcerUrl(e);
    } catch (err) {
      return usageError(err instanceof Error ? err.message : String(err));
    }
  }
  let reader: DayReader;
  try {
    if (enforcers.length > 0) reader = enforcerDayReader(enforcers);
    else if (clusterNodes !== undefined)
      reader = redisDayReader({
        clusterNodes: parseHostPorts('--redis-cluster-nodes', clusterNodes),
        password,
      });
    else if (sentinels !== undefined)
      reader = redisDayReader({
        sentinels: parseHostPorts('--redis-sentinels', sentinels),
        name: sentinelName ?? '',
        password,
        sentinelPassword,
      });
    else if ((redisUrl ?? env['KEYSTILE_REDIS_URL']) !== undefined)
      reader = redisDayReader({ url: redisUrl ?? env['KEYSTILE_REDIS_URL'] ?? '' });
    else
      return usageError(
        'where are the counters? give --redis-url (or $KEYSTILE_REDIS_URL), --redis-cluster-nodes, --redis-sentinels or --enforcer',
      );
  } catch (err) {
    return usageError(err instanceof Error ? err.message : String(err));
  }

  const warning = retentionWarning(days, today, retention);
  if (warning !== undefined) io.err(`warning: ${warning}`);

  try {
    const kc = io.kubeConfig ?? loadKubeConfig();
    const namespace = values.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
    const cluster = new UsageKube(kc, namespace);
    // A plan named twice is reported once (twice would repeat its rows, and a bill would add them up).
    const only = [...new Set(values.plan)];
    const subjects =
      key !== undefined
        ? await cluster.keySubjects(key, only, io.err)
        : await cluster.customerSubjects(values.customer ?? '', only, io.err);
    const plans: PlanUsage[] = [];
    for (const p of subjects.plans) {
      const totals = days.map(() => 0);
      for (const s of p.subjects) {
        const counts = await reader.read(days.map((d) => dayKey(planId(namespace, p.plan), s, d)));
        counts.forEach((n, i) => (totals[i] = (totals[i] ?? 0) + n));
      }
      plans.push({
        plan: p.plan,
        countBy: p.countBy,
        subjects: p.subjects.map(subjectKey),
        requests: totals,
      });
    }
    io.out(formatUsage({ scope: subjects.scope, days, plans }, format));
    return 0;
  } catch (err) {
    io.err(`keystile usage: ${describe(err)}`);
    return 1;
  } finally {
    await reader.close();
  }
}

/** The plans to report and the counter subjects of each. */
interface Subjects {
  readonly scope: UsageScope;
  readonly plans: { plan: string; countBy: 'Key' | 'Customer'; subjects: Subject[] }[];
}

/** The plans named in a key's status (`plan:api/stage`), once each, in order. */
export function plansOfStatus(plans: readonly string[] | undefined): string[] {
  return [...new Set((plans ?? []).map((p) => p.split(':')[0] ?? '').filter(Boolean))];
}

/** The cluster reads: keys, their plans, how each plan counts. */
class UsageKube {
  readonly #custom: CustomObjectsApi;
  readonly #ns: string;
  readonly #plans = new Map<string, UsagePlan | undefined>();

  constructor(kc: KubeConfig, namespace: string) {
    this.#custom = kc.makeApiClient(CustomObjectsApi);
    this.#ns = namespace;
  }

  async keySubjects(name: string, only: readonly string[], warn: (l: string) => void): Promise<Subjects> {
    let key: ApiKey;
    try {
      key = (await this.#custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: this.#ns,
        plural: 'apikeys',
        name,
      })) as ApiKey;
    } catch (err) {
      if (isNotFound(err)) throw new Error(`ApiKey ${name} does not exist in namespace ${this.#ns}`);
      throw err;
    }
    const keyId = key.status?.keyId;
    if (!keyId) throw new Error(`ApiKey ${name} has no key id yet (status.keyId): is the operator running?`);
    const planNames = only.length > 0 ? [...only] : plansOfStatus(key.status?.plans);
    if (planNames.length === 0) {
      throw new Error(`ApiKey ${name} is bound to no plan now: name the plans to report with --plan`);
    }
    const customer = key.spec.customer;
    const plans = [];
    for (const plan of planNames) {
      const countBy = await this.#countBy(plan, warn);
      const subject: Subject =
        countBy === 'Customer' && customer !== undefined
          ? { kind: 'customer', name: customer }
          : { kind: 'key', id: keyId };
      plans.push({ plan, countBy, subjects: [subject] });
    }
    return {
      scope: { namespace: this.#ns, key: name, keyId, ...(customer !== undefined && { customer }) },
      plans,
    };
  }

  async customerSubjects(
    customer: string,
    only: readonly string[],
    warn: (l: string) => void,
  ): Promise<Subjects> {
    const keys = (await this.#listKeys()).filter((k) => k.spec.customer === customer);
    if (keys.length === 0) throw new Error(`no ApiKey of customer ${customer} in namespace ${this.#ns}`);
    const counted = keys.filter((k) => {
      if (k.status?.keyId) return true;
      warn(`warning: ApiKey ${k.metadata.name} has no key id yet; not counted`);
      return false;
    });
    const planNames =
      only.length > 0
        ? [...only]
        : [...new Set(counted.flatMap((k) => plansOfStatus(k.status?.plans)))].sort();
    const plans = [];
    for (const plan of planNames) {
      const countBy = await this.#countBy(plan, warn);
      const onPlan =
        only.length > 0 ? counted : counted.filter((k) => plansOfStatus(k.status?.plans).includes(plan));
      const subjects: Subject[] =
        countBy === 'Customer'
          ? [{ kind: 'customer', name: customer }]
          : onPlan.map((k) => ({ kind: 'key', id: k.status?.keyId ?? '' }));
      plans.push({ plan, countBy, subjects });
    }
    return {
      scope: { namespace: this.#ns, customer, keys: counted.map((k) => k.metadata.name).sort() },
      plans,
    };
  }

  async #countBy(plan: string, warn: (l: string) => void): Promise<'Key' | 'Customer'> {
    if (!this.#plans.has(plan)) {
      try {
        this.#plans.set(
          plan,
          (await this.#custom.getNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            namespace: this.#ns,
            plural: 'usageplans',
            name: plan,
          })) as UsagePlan,
        );
      } catch (err) {
        if (!isNotFound(err)) throw err;
        this.#plans.set(plan, undefined);
        warn(`warning: UsagePlan ${plan} does not exist (any more): its counters are read as counted by key`);
      }
    }
    return this.#plans.get(plan)?.spec.countBy ?? 'Key';
  }

  async #listKeys(): Promise<ApiKey[]> {
    const out: ApiKey[] = [];
    let cont: string | undefined;
    do {
      const page = (await this.#custom.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: this.#ns,
        plural: 'apikeys',
        limit: 500,
        ...(cont !== undefined && { _continue: cont }),
      })) as { items: ApiKey[]; metadata?: { continue?: string } };
      out.push(...page.items);
      cont = page.metadata?.continue || undefined;
    } while (cont !== undefined);
    return out;
  }
}
