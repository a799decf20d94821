/**
 * `host:port` as every Keystile process takes it on its command line (Redis Cluster nodes, sentinels):
 * one parser, so the enforcer, the operator and the CLI accept exactly the same addresses.
 */

/** A host and port. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * Parses one `host:port` (`[v6]:port` for an IPv6 address; the port 1 to 65535), or undefined when
 * `entry` is not one.
 */
export function parseHostPort(entry: string): HostPort | undefined {
  const colon = entry.lastIndexOf(':');
  if (colon <= 0) return undefined;
  const host = entry.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const portText = entry.slice(colon + 1);
  const port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (host === '' || !(port >= 1 && port <= 65535)) return undefined;
  return Object.freeze({ host, port });
}
