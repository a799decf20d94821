import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { pemData } from './pki.ts';

/** A kubeconfig user authenticated by a client certificate. */
export interface CertUser {
  readonly name: string;
  readonly cert: string;
  readonly key: string;
}

/**
 * Writes a self-contained kubeconfig (certificates embedded, so it can be copied elsewhere) for one
 * cluster and one user, mode 0600 because it holds a private key.
 */
export function writeKubeconfig(path: string, server: string, caCert: string, user: CertUser): void {
  const cluster = 'keystile-local';
  const context = `${user.name}@${cluster}`;
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: cluster, cluster: { server, 'certificate-authority-data': pemData(caCert) } }],
    users: [
      {
        name: user.name,
        user: { 'client-certificate-data': pemData(user.cert), 'client-key-data': pemData(user.key) },
      },
    ],
    contexts: [{ name: context, context: { cluster, user: user.name, namespace: 'default' } }],
    'current-context': context,
    preferences: {},
  };
  writeFileSync(path, stringify(config), { mode: 0o600 });
}
