/**
 * The local system's loopback ports. Every port is KEYSTILE_PORT_BASE (default 17000) plus a fixed
 * offset, so a second local system (another clone, a CI job) can run beside the first by choosing
 * another base. Suites that start servers of their own ask the kernel for free ports instead.
 */
export interface Ports {
  readonly etcdClient: number;
  readonly etcdPeer: number;
  readonly apiserver: number;
  readonly controllerManager: number;
  readonly envoy: number;
  readonly envoyAdmin: number;
  readonly upstream: number;
  readonly redis: number;
  readonly prometheus: number;
  readonly operator: number;
  /** The demo enforcer's admin port (the operator polls its usage there). */
  readonly demoEnforcerAdmin: number;
  /** The demo enforcer's check ports and its self-service port. */
  readonly demoEnforcerHttp: number;
  readonly demoEnforcerGrpc: number;
  readonly demoEnforcerSelfService: number;
}

/** Reads KEYSTILE_PORT_BASE once and lays the ports out from it. */
export function localPorts(env: NodeJS.ProcessEnv = process.env): Ports {
  const raw = env['KEYSTILE_PORT_BASE'] ?? '17000';
  const base = Number(raw);
  if (!Number.isInteger(base) || base < 1024 || base > 64000) {
    throw new Error(`KEYSTILE_PORT_BASE must be a whole number from 1024 to 64000, not '${raw}'`);
  }
  return Object.freeze({
    etcdClient: base + 379,
    etcdPeer: base + 380,
    apiserver: base + 443,
    controllerManager: base + 257,
    envoy: base + 80,
    envoyAdmin: base + 901,
    upstream: base + 81,
    redis: base + 637,
    prometheus: base + 90,
    operator: base + 810,
    demoEnforcerAdmin: base + 190,
    demoEnforcerHttp: base + 191,
    demoEnforcerGrpc: base + 192,
    demoEnforcerSelfService: base + 193,
  });
}
