import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The files of the local control plane's certificate authority and identities. */
export interface Pki {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly servingCert: string;
  readonly servingKey: string;
  readonly adminCert: string;
  readonly adminKey: string;
  readonly controllerManagerCert: string;
  readonly controllerManagerKey: string;
  readonly serviceAccountKey: string;
  readonly serviceAccountPub: string;
}

const openssl = (args: readonly string[]): void => {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
};

/**
 * Makes (once) what envtest makes at start: a CA, the API server's serving certificate for loopback and
 * the in-cluster names, client certificates for an admin (group system:masters) and for
 * kube-controller-manager, and the service-account signing key pair that TokenRequest needs. Kept across
 * restarts so a kubeconfig a person saved keeps working.
 */
export function ensurePki(stateDir: string): Pki {
  const dir = join(stateDir, 'pki');
  const f = (name: string): string => join(dir, name);
  const pki: Pki = {
    dir,
    caCert: f('ca.crt'),
    caKey: f('ca.key'),
    servingCert: f('apiserver.crt'),
    servingKey: f('apiserver.key'),
    adminCert: f('admin.crt'),
    adminKey: f('admin.key'),
    controllerManagerCert: f('controller-manager.crt'),
    controllerManagerKey: f('controller-manager.key'),
    serviceAccountKey: f('sa.key'),
    serviceAccountPub: f('sa.pub'),
  };
  if (existsSync(pki.serviceAccountPub)) return pki;
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
  } catch {
    throw new Error('openssl is not on PATH; the local control plane needs it to make its certificates');
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const days = ['-days', '3650'];
  openssl([
    'req',
    '-x509',
    ...ec,
    ...days,
    '-keyout',
    pki.caKey,
    '-out',
    pki.caCert,
    '-subj',
    '/CN=keystile-local-ca',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const issue = (cert: string, key: string, subj: string, ext: readonly string[]): void => {
    openssl([
      'req',
      '-x509',
      ...ec,
      ...days,
      '-CA',
      pki.caCert,
      '-CAkey',
      pki.caKey,
      '-keyout',
      key,
      '-out',
      cert,
      '-subj',
      subj,
      '-addext',
      'basicConstraints=critical,CA:FALSE',
      '-addext',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      ...ext.flatMap((e) => ['-addext', e]),
    ]);
  };
  issue(pki.servingCert, pki.servingKey, '/CN=kube-apiserver', [
    'extendedKeyUsage=serverAuth',
    'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local',
  ]);
  issue(pki.adminCert, pki.adminKey, '/O=system:masters/CN=keystile-admin', ['extendedKeyUsage=clientAuth']);
  issue(pki.controllerManagerCert, pki.controllerManagerKey, '/CN=system:kube-controller-manager', [
    'extendedKeyUsage=clientAuth',
  ]);
  openssl([
    'genpkey',
    '-algorithm',
    'RSA',
    '-pkeyopt',
    'rsa_keygen_bits:2048',
    '-out',
    pki.serviceAccountKey,
  ]);
  openssl(['pkey', '-in', pki.serviceAccountKey, '-pubout', '-out', pki.serviceAccountPub]);
  return pki;
}

/** A PEM file as base64, the form kubeconfig's `*-data` fields take. */
export function pemData(path: string): string {
  return readFileSync(path).toString('base64');
}
