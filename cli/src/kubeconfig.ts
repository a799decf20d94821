/** Loads the kubeconfig as kubectl finds it, with errors that never quote the file. */
import { KubeConfig } from '@kubernetes/client-node';

/**
 * The kubeconfig (`KUBECONFIG`, else `~/.kube/config`, else the in-cluster service account). A file that
 * cannot be read throws the loader's first line alone: its parser's message goes on with an excerpt of the
 * file, which may hold a token, a password or a client key.
 */
export function loadKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  try {
    kc.loadFromDefault();
  } catch (err) {
    const first = (err instanceof Error ? err.message : String(err)).split('\n')[0]?.trim();
    throw new Error(`cannot load the kubeconfig: ${first || 'not a kubeconfig'}`);
  }
  return kc;
}
