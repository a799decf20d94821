/**
 * The chart's values, defined once: charts/generate.ts writes `charts/keystile/values.schema.json` (what
 * Helm validates every install against: unknown keys and bad types are refused), `values.yaml` (the
 * defaults, each described) and `docs/reference/values.md` from this one definition.
 *
 * Every setting carries a description and a default. Kubernetes objects passed through as they are
 * (resources, affinity, tolerations, NetworkPolicy peers) are typed `object`; everything Keystile itself
 * reads is closed (`additionalProperties: false`).
 */
import { type TSchema, Type } from '@sinclair/typebox';
import { ENFORCER_MALLOC_ARENA_MAX, ENFORCER_NODE_OPTIONS } from '../enforcer/src/runtime-settings.ts';
import { OPERATOR_MALLOC_ARENA_MAX, OPERATOR_NODE_OPTIONS } from '../operator/src/runtime-settings.ts';
import { groundVersions } from '../test/ground/paths.ts';

function envoyVersion(): string {
  const v = groundVersions()['ENVOY_VERSION'];
  if (v === undefined) throw new Error('test/ground/versions.sh sets no ENVOY_VERSION');
  return v;
}

/** The Envoy image the gateway runs: the version the test ground runs (test/ground/versions.sh). */
export const ENVOY_IMAGE = { repository: 'envoyproxy/envoy', tag: `v${envoyVersion()}` } as const;

const DNS_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

const str = (description: string, def = '', extra: Record<string, unknown> = {}): TSchema =>
  Type.String({ description, default: def, ...extra });
const bool = (description: string, def: boolean): TSchema => Type.Boolean({ description, default: def });
const int = (description: string, def: number, minimum: number, maximum: number): TSchema =>
  Type.Integer({ description, default: def, minimum, maximum });
const oneOf = <T extends string>(description: string, values: readonly T[], def: T): TSchema =>
  Type.Unsafe<T>({ type: 'string', enum: [...values], description, default: def });
const obj = (description: string, properties: Record<string, TSchema>): TSchema =>
  Type.Object(properties, { description, additionalProperties: false });
/** A Kubernetes object passed through as it is. */
const kube = (description: string, def: unknown = {}): TSchema =>
  Type.Unsafe({ type: 'object', description, default: def });
const kubeList = (description: string): TSchema =>
  Type.Array(Type.Unsafe({ type: 'object' }), { description, default: [] });
const stringMap = (description: string, def: Record<string, string> = {}): TSchema =>
  Type.Unsafe<Record<string, string>>({
    type: 'object',
    additionalProperties: { type: 'string' },
    description,
    default: def,
  });
const strings = (description: string, item: Record<string, unknown> = {}): TSchema =>
  Type.Array(Type.String(item), { description, default: [] });

const image = (what: string, repository: string, tag: string, tagNote: string): TSchema =>
  obj(`The ${what} image.`, {
    repository: str('Where the image is.', repository),
    tag: str(tagNote, tag),
    pullPolicy: oneOf('When the kubelet pulls it.', ['Always', 'IfNotPresent', 'Never'], 'IfNotPresent'),
  });

const resources = (requests: Record<string, string>, limits: Record<string, string>): TSchema =>
  kube('Container resources (requests and limits), as Kubernetes takes them.', { requests, limits });

/** Where pods go and what they carry: the usual pass-through settings. */
const placement = (what: string): Record<string, TSchema> => ({
  podAnnotations: stringMap(`Annotations on the ${what} pods.`),
  podLabels: stringMap(`Labels on the ${what} pods, besides the chart's.`),
  nodeSelector: stringMap(`Node labels the ${what} pods must run on.`),
  tolerations: kubeList(`Tolerations of the ${what} pods.`),
  affinity: kube(`Affinity of the ${what} pods.`),
  topologySpreadConstraints: kubeList(`Topology spread constraints of the ${what} pods.`),
  priorityClassName: str(`The priority class of the ${what} pods.`),
});

const serviceAccount = (what: string): TSchema =>
  obj(`The ${what}'s ServiceAccount.`, {
    create: bool('Create it. Off: name one that exists.', true),
    name: str('Its name. Empty: `<fullname>-' + what + '`.'),
    annotations: stringMap('Annotations on it (e.g. a cloud identity).'),
  });

const operator = obj('The operator: renders ApiKeys, UsagePlans and PlanBindings for the enforcers.', {
  image: image(
    'operator',
    'ghcr.io/keystile/operator',
    '',
    "The image's tag. Empty: the chart's appVersion.",
  ),
  replicas: int(
    'How many replicas: one holds the Lease and writes, the others keep their caches warm.',
    2,
    1,
    10,
  ),
  leaderElection: obj('Leader election through a coordination.k8s.io Lease in the release namespace.', {
    enabled: bool('Take the Lease before writing (KEYSTILE_LEADER_ELECT). Keep it on with 2 replicas.', true),
    leaseName: str("The Lease's name. Empty: `<fullname>-operator`."),
    leaseDurationSeconds: int(
      'How long a Lease lasts unrenewed. The holder stops writing after 0.8 x this unrenewed: keep renewSeconds under that.',
      15,
      2,
      600,
    ),
    renewSeconds: int(
      'How often the holder renews it. Must be under 0.8 x leaseDurationSeconds (renewSeconds x 10 < leaseDurationSeconds x 8), or the leader drops the Lease every cycle; the chart refuses it.',
      5,
      1,
      300,
    ),
  }),
  watchNamespaces: strings('The namespaces to watch (KEYSTILE_NAMESPACES). Empty: every namespace.', {
    pattern: DNS_LABEL,
    maxLength: 63,
  }),
  workers: int("Reconciles at once, and a namespace's writes at once (KEYSTILE_WORKERS).", 32, 1, 64),
  debounceMs: int("How long a namespace's changes gather before it renders, ms.", 50, 0, 10_000),
  logLevel: oneOf(
    'Log level (JSON logs; key material redacted).',
    ['trace', 'debug', 'info', 'warn', 'error'],
    'info',
  ),
  port: int('The port of /healthz, /readyz and /metrics.', 8081, 1024, 65535),
  nodeOptions: str(
    "NODE_OPTIONS: V8's heap caps. Measured at 10,000 keys: 242 MB peak resident memory with these and mallocArenaMax, 580 MB without. Raise --max-old-space-size for far more keys.",
    OPERATOR_NODE_OPTIONS,
  ),
  mallocArenaMax: str(
    "MALLOC_ARENA_MAX: glibc's malloc arenas. Two are plenty for Node's one JavaScript thread; the default (up to 8 per core) keeps more freed memory resident (measured at 10,000 keys: 262 MB peak without, 250 MB with).",
    OPERATOR_MALLOC_ARENA_MAX,
  ),
  resources: resources({ cpu: '100m', memory: '256Mi' }, { memory: '384Mi' }),
  usage: obj('Usage reporting: ApiKey usage status, alert Events, adjustments (the leader polls).', {
    intervalSeconds: int('Seconds between usage polls (KEYSTILE_USAGE_INTERVAL).', 15, 1, 3600),
    endpoints: strings(
      "More enforcer admin URLs to poll with the memory store, e.g. sidecars' (`dns+http://name:port` is every A record of a headless Service). The gateway's are added by the chart.",
    ),
    writesPerSecond: int('The most ApiKey status writes a second for usage.', 20, 1, 10_000),
    metricsPerKey: bool('Export used and limit per key; off keeps per-plan sums (very many keys).', true),
  }),
  extraArgs: strings('More command-line flags for the operator.'),
  extraEnv: kubeList('More environment variables (EnvVar objects).'),
  serviceAccount: serviceAccount('operator'),
  rbac: obj("The operator's RBAC (operator/deploy/rbac.yaml, rendered with the release's names).", {
    create: bool(
      'Create its rules: a ClusterRole and ClusterRoleBinding, or with watchNamespaces a Role and RoleBinding in each listed namespace (and no ClusterRole); and the Role of its Lease.',
      true,
    ),
  }),
  podDisruptionBudget: obj('A PodDisruptionBudget, with 2 or more replicas.', {
    enabled: bool('Create it.', true),
    minAvailable: int('Replicas kept through voluntary disruptions.', 1, 0, 10),
  }),
  ...placement('operator'),
});

const stage = Type.Object(
  {
    api: Type.String({ description: 'The API, as PlanBindings name it.', pattern: DNS_LABEL, maxLength: 63 }),
    stage: Type.String({ description: 'The stage.', pattern: DNS_LABEL, maxLength: 63 }),
    port: Type.Integer({
      description: 'The port Envoy listens on for this stage (1024 or more: the containers run as non-root).',
      minimum: 1024,
      maximum: 65535,
    }),
    servicePort: Type.Optional(
      Type.Integer({
        description: "The Service's port for this stage. Default: the same as port.",
        minimum: 1,
        maximum: 65535,
      }),
    ),
  },
  { additionalProperties: false },
);

const gateway = obj(
  "Gateway mode: a Deployment of Envoy and the enforcer in front of one of your Services, with a Service of its own. Every request to the gateway's Service is checked (key, throttle, quota) before it reaches yours.",
  {
    enabled: bool('Deploy the gateway.', false),
    replicas: int(
      'How many gateway pods. More than one needs shared counters (counters.store: redis, or auto with Redis given).',
      1,
      1,
      100,
    ),
    watchNamespace: str(
      'The namespace of the ApiKeys, UsagePlans and PlanBindings the gateway enforces (where the operator renders them). Empty: the release namespace. With operator.watchNamespaces set, it must be one of them.',
      '',
      { pattern: `^$|${DNS_LABEL}`, maxLength: 63 },
    ),
    stages: Type.Array(stage, {
      description:
        'The API stages the gateway serves: a listener (and a Service port) each, every one in front of the same upstream. Example: `[{api: orders, stage: prod, port: 8080, servicePort: 80}]`.',
      default: [],
    }),
    extAuthz: oneOf(
      'How Envoy asks the enforcer (inside the pod): HTTP or gRPC ext_authz.',
      ['http', 'grpc'],
      'http',
    ),
    timeout: str(
      "How long Envoy waits for a decision before answering 503 (fail closed): seconds, as Envoy's Duration takes them (`0.5s`, `2s`; not `500ms`).",
      '0.5s',
      // protobuf's Duration in JSON: seconds, at most 9 decimals, a single 's'; Envoy refuses anything else.
      { pattern: '^[0-9]{1,11}(\\.[0-9]{1,9})?s$' },
    ),
    allowedHeaders: strings(
      'Request headers the enforcer may read, besides x-api-key, authorization, x-date, date, source, content-md5 and content-type, and the headers enforcer.keySource names (added by the chart): headers clients sign.',
      { pattern: '^[a-z0-9-]+$' },
    ),
    upstream: obj('Your Service, behind the gateway.', {
      service: str("The Service's name (required unless host is given).", '', { pattern: `^$|${DNS_LABEL}` }),
      namespace: str("The Service's namespace. Empty: the release namespace.", '', {
        pattern: `^$|${DNS_LABEL}`,
      }),
      port: int("The Service's port.", 80, 1, 65535),
      host: str('Instead of service: any DNS name or IP address Envoy resolves.'),
    }),
    drainSeconds: int(
      "Seconds a terminating gateway pod keeps serving while the Service's endpoints drop it (Envoy's preStop sleeps this long, then Envoy stops). All the while Envoy drains (`--drain-time-s`, started by the enforcer's preStop): responses close their connections (envoy.drainStrategy), so clients with kept-alive connections move to other pods before Envoy stops. Raise it when endpoints reach your clients or load balancers more slowly.",
      10,
      1,
      300,
    ),
    maxShards: int(
      "The shards a stage may grow to; the enforcer's Role names each one (256: 512,000 keys a stage). The Role must stay under about 1 MB, which the chart checks: at 256, about 45 stages of short names; lower it to serve more stages in one release.",
      256,
      1,
      256,
    ),
    service: obj("The gateway's Service (where your clients send requests).", {
      type: oneOf('The Service type.', ['ClusterIP', 'NodePort', 'LoadBalancer'], 'ClusterIP'),
      annotations: stringMap('Annotations on the Service.'),
    }),
    envoy: obj('The Envoy container.', {
      image: image('Envoy', ENVOY_IMAGE.repository, ENVOY_IMAGE.tag, "The image's tag."),
      adminPort: int("Envoy's admin port (bound to 127.0.0.1: only the pod reaches it).", 9901, 1024, 65535),
      concurrency: int("Envoy's worker threads.", 2, 1, 64),
      logLevel: oneOf(
        "Envoy's log level.",
        ['trace', 'debug', 'info', 'warning', 'error', 'critical', 'off'],
        'info',
      ),
      drainStrategy: oneOf(
        'How Envoy drains through drainSeconds (`--drain-strategy`): immediate, every response closes its connection (HTTP/1.1 `Connection: close`, HTTP/2 GOAWAY) from the start; gradual, a share of them growing over drainSeconds.',
        ['immediate', 'gradual'],
        'immediate',
      ),
      resources: resources({ cpu: '100m', memory: '64Mi' }, { memory: '256Mi' }),
    }),
    enforcer: obj('The enforcer container (watch mode: it reads its stages by name through the API).', {
      image: image(
        'enforcer',
        'ghcr.io/keystile/enforcer',
        '',
        "The image's tag. Empty: the chart's appVersion.",
      ),
      ports: obj("The enforcer's ports. The check ports bind 127.0.0.1: only the pod's Envoy reaches them.", {
        http: int('HTTP ext_authz.', 9191, 1024, 65535),
        grpc: int('gRPC ext_authz.', 9192, 1024, 65535),
        admin: int('/healthz, /readyz, /metrics and the usage API (all interfaces).', 9190, 1024, 65535),
      }),
      keySource: str(
        'Where the key is read from: `header:<name>`, `bearer`, `query:<name>`, comma-separated. Envoy lets each header named here through to the enforcer (as `keystile inject` does); `bearer` reads authorization.',
        'header:x-api-key',
      ),
      logLevel: oneOf('Log level.', ['trace', 'debug', 'info', 'warn', 'error', 'silent'], 'info'),
      metricsKeyId: bool(
        'Label the decision and quota-threshold metrics with the key id (`--metrics-key-id`). Off for very many keys: one series per key and outcome otherwise, and past 200,000 label sets the enforcer starts its decision series over (docs/operating-at-scale.md). The per-key panels are then empty.',
        true,
      ),
      nodeOptions: str(
        'NODE_OPTIONS: a small young generation lowers resident memory, and keeps the heap flat under load with the Redis store.',
        ENFORCER_NODE_OPTIONS,
      ),
      mallocArenaMax: str(
        "MALLOC_ARENA_MAX: glibc's malloc arenas. Two are plenty for Node's one JavaScript thread; the default (up to 8 per core) keeps more freed memory resident.",
        ENFORCER_MALLOC_ARENA_MAX,
      ),
      stopAfterEnvoySeconds: int(
        "Seconds the enforcer keeps answering checks after Envoy has stopped: its preStop starts Envoy's drain, then waits drainSeconds plus these, so no check in flight loses its server.",
        5,
        1,
        60,
      ),
      shutdownSeconds: int(
        "Seconds the enforcer's own shutdown may take once it is sent SIGTERM (its ports closed, a last checkpoint, local counts added to Redis) before the kubelet kills it. The pod's terminationGracePeriodSeconds is drainSeconds + stopAfterEnvoySeconds + shutdownSeconds.",
        10,
        1,
        300,
      ),
      resources: resources({ cpu: '200m', memory: '128Mi' }, { memory: '512Mi' }),
      extraArgs: strings('More flags (docs/enforcer.md), e.g. `--problem-json`.'),
      extraEnv: kubeList('More environment variables (EnvVar objects).'),
    }),
    serviceAccount: serviceAccount('gateway'),
    rbac: obj("The enforcer's Role: get, list and watch of its stages' rendered objects, by name.", {
      create: bool('Create the Role and RoleBinding (in watchNamespace).', true),
    }),
    networkPolicy: obj(
      "A NetworkPolicy on the gateway pods: the stages' ports open to trafficFrom, the admin port only to metricsFrom and the operator. The check ports bind loopback and are not opened.",
      {
        enabled: bool('Create it.', true),
        trafficFrom: kubeList(
          'Who may send requests (NetworkPolicyPeer objects). Empty: anyone, as without a policy.',
        ),
        metricsFrom: Type.Array(Type.Unsafe({ type: 'object' }), {
          description:
            'Who may scrape /metrics (NetworkPolicyPeer objects): Prometheus. The operator is always allowed (it polls usage).',
          default: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
        }),
      },
    ),
    podDisruptionBudget: obj('A PodDisruptionBudget, with 2 or more replicas.', {
      enabled: bool('Create it.', true),
      maxUnavailable: int('Pods that may be down at once through voluntary disruptions.', 1, 1, 100),
    }),
    ...placement('gateway'),
  },
);

const counters = obj(
  'Where enforcers count throttle and quota. One enforcer: in memory. Several enforcers of the same stages: Redis, or each grants the whole quota.',
  {
    store: oneOf(
      'auto: redis as soon as more than one enforcer is configured (gateway.replicas > 1, or sidecarEnforcers and the gateway together more than one), else memory.',
      ['auto', 'memory', 'redis'],
      'auto',
    ),
    sidecarEnforcers: int(
      'How many enforcers you run as sidecars (`keystile inject`) on the same plans; with the gateway, more than one in all makes auto choose redis. Tells the operator, too.',
      0,
      0,
      10_000,
    ),
    persistence: obj(
      "Keeps the gateway's memory-store counters on a PersistentVolumeClaim. Without it they are checkpointed to an emptyDir: a restarted container keeps them, but a new pod (an upgrade, a node drain, an eviction) starts every key's quota from zero. With it the gateway (one replica, the memory store) is replaced with the Recreate strategy: the old pod writes its last checkpoint before the new one reads it, so no count is lost, and no request is answered in between.",
      {
        enabled: bool('Use a claim for the counters.', false),
        existingClaim: str(
          'A claim of your own, in the release namespace. Empty: the chart creates one.',
          '',
          {
            pattern: `^$|${DNS_LABEL}`,
          },
        ),
        storageClassName: str("The created claim's StorageClass. Empty: the cluster's default."),
        size: str(
          "The created claim's size: the checkpoint takes about 100 bytes a counter (a key's quota, bucket and days).",
          '1Gi',
          { pattern: '^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$' },
        ),
      },
    ),
    redis: obj(
      'The Redis the enforcers (and the operator, for usage) share. Give one of url, clusterNodes, sentinels.',
      {
        url: str(
          '`redis://[user@]host:port[/db]` or `rediss://...` (user: a Redis ACL user); put no password here: see existingSecret.',
          '',
          {
            pattern: '^$|^rediss?://[^/]',
          },
        ),
        clusterNodes: strings('Redis Cluster seed nodes, `host:port`.', { pattern: '^.+:[0-9]+$' }),
        sentinels: strings('Redis Sentinels, `host:port`.', { pattern: '^.+:[0-9]+$' }),
        sentinelName: str('The master the Sentinels watch.', 'mymaster'),
        existingSecret: str(
          "A Secret (in the release namespace) holding Redis's password. Empty: no password.",
        ),
        existingSecretKey: str('The data key of the password in that Secret.', 'password'),
        existingSecretSentinelKey: str(
          "With sentinels that require a password themselves (Sentinel's requirepass): its data key in that Secret. Empty: the sentinels need none. Bitnami's Redis chart protects its sentinels with the master's password: give the same key as existingSecretKey.",
        ),
        unavailable: oneOf(
          'What enforcers do while Redis is away: closed (503), open (allow, counted nowhere), local (count in memory, then add to Redis when it returns).',
          ['closed', 'open', 'local'],
          'closed',
        ),
        timeoutSeconds: Type.Number({
          description:
            'Seconds one Redis command may take before it counts as failed (then `unavailable` applies).',
          default: 0.25,
          minimum: 0.001,
          maximum: 60,
        }),
      },
    ),
  },
);

const monitoring = obj('Prometheus and Grafana: prometheus-operator objects and the dashboard.', {
  serviceMonitor: obj('A ServiceMonitor (monitoring.coreos.com/v1) scraping the operator and the gateway.', {
    enabled: bool('Create it (needs the prometheus-operator CRDs).', false),
    interval: str('Scrape interval.', '30s'),
    labels: stringMap('Labels your Prometheus selects ServiceMonitors by (e.g. `release: prometheus`).'),
  }),
  prometheusRule: obj("A PrometheusRule with Keystile's alerts (the chart's files/rules).", {
    enabled: bool('Create it (needs the prometheus-operator CRDs).', false),
    labels: stringMap('Labels your Prometheus selects rules by.'),
  }),
  dashboards: obj("A ConfigMap with Keystile's Grafana dashboard, labelled for Grafana's sidecar.", {
    enabled: bool('Create it.', false),
    namespace: str('Where the ConfigMap goes (where Grafana looks). Empty: the release namespace.', '', {
      pattern: `^$|${DNS_LABEL}`,
    }),
    labels: stringMap('Labels besides `grafana_dashboard: "1"` (the sidecar\'s default).'),
    annotations: stringMap("Annotations, e.g. `grafana_folder: Keystile` (the sidecar's folder annotation)."),
  }),
});

/** The values schema: the one definition of every setting the chart takes. */
export const VALUES_SCHEMA: TSchema = Type.Object(
  {
    nameOverride: str("Replaces the chart's name in object names."),
    fullnameOverride: str('Replaces `<release>-keystile` in object names.', '', { maxLength: 48 }),
    commonLabels: stringMap('Labels on every object the chart makes.'),
    imagePullSecrets: kubeList('Secrets to pull images with (LocalObjectReference objects).'),
    clusterDomain: str(
      "The cluster's DNS domain, for Service names the gateway and operator resolve.",
      'cluster.local',
    ),
    podSecurityContext: kube(
      "The security context of every pod of the chart (operator, gateway, helm test), merged over these defaults: a key set to null drops it. On OpenShift's restricted-v2, drop runAsUser, runAsGroup and fsGroup (null) so the namespace's range applies.",
      {
        runAsNonRoot: true,
        runAsUser: 65532,
        runAsGroup: 65532,
        fsGroup: 65532,
        seccompProfile: { type: 'RuntimeDefault' },
      },
    ),
    containerSecurityContext: kube(
      'The security context of every container of the chart, merged over these defaults: a key set to null drops it. The images need no root, no writable root filesystem and no capability.',
      {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      },
    ),
    operator,
    gateway,
    counters,
    monitoring,
    tests: obj('The `helm test` hook: a pod that checks /readyz of the operator (and the gateway).', {
      image: image(
        'test pod',
        'ghcr.io/keystile/operator',
        '',
        "The image's tag (Node 24 runs the check). Empty: the chart's appVersion.",
      ),
    }),
    global: kube('Values a parent chart shares with its subcharts (unused by this chart).'),
  },
  {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'Values of the keystile Helm chart',
    description: 'Generated by charts/generate.ts from charts/values.ts. Do not edit by hand.',
    additionalProperties: false,
  },
);
