import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { readFileSync } from 'node:fs';

/**
 * Client TLS material (PEM file paths) for probing a server, or 'insecure' for a loopback server with a
 * self-signed certificate of its own (kube-controller-manager's) where there is no CA to verify against.
 */
export type TlsClient = { readonly ca: string; readonly cert?: string; readonly key?: string } | 'insecure';

/** A response's status and body. */
export interface ProbeResponse {
  readonly status: number;
  readonly body: string;
}

/** How to make one probe request. */
export interface ProbeOptions {
  readonly tls?: TlsClient;
  readonly headers?: Record<string, string>;
  readonly timeoutMs?: number;
}

/** One GET with a short timeout (2 s by default); TLS material is read from the given PEM files. */
export function get(url: string, options: ProbeOptions = {}): Promise<ProbeResponse> {
  const { tls, headers, timeoutMs = 2_000 } = options;
  const u = new URL(url);
  const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      u,
      {
        method: 'GET',
        timeout: timeoutMs,
        ...(headers && { headers }),
        ...(tls === 'insecure'
          ? { rejectUnauthorized: false }
          : tls && {
              ca: readFileSync(tls.ca),
              ...(tls.cert && { cert: readFileSync(tls.cert) }),
              ...(tls.key && { key: readFileSync(tls.key) }),
            }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}
