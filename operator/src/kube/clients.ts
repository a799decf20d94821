/** The API clients the operator uses, from one KubeConfig (in-cluster, or KUBECONFIG). */
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  KubeConfig,
} from '@kubernetes/client-node';

/** Every client, sharing one KubeConfig. */
export interface Clients {
  readonly kc: KubeConfig;
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;
  readonly coordination: CoordinationV1Api;
  readonly events: EventsV1Api;
}

/** Loads the KubeConfig the usual way (KUBECONFIG, ~/.kube/config, or the in-cluster service account). */
export function makeClients(kc: KubeConfig = defaultKubeConfig()): Clients {
  return {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    coordination: kc.makeApiClient(CoordinationV1Api),
    events: kc.makeApiClient(EventsV1Api),
  };
}

function defaultKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}
