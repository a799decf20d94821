/**
 * Events (events.k8s.io/v1) for what changed. One per transition, never one per key at creation: a
 * binding that binds 10,000 keys says so once.
 */
import type { EventsV1Api } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describe, microTime } from './errors.ts';

/** The object an Event is about. */
export interface EventTarget {
  readonly kind: string;
  readonly apiVersion: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
}

/** Records Events; failures are logged, never fatal (an Event is a courtesy). */
export class EventRecorder {
  readonly #api: EventsV1Api;
  readonly #instance: string;
  readonly #log: Logger;

  constructor(api: EventsV1Api, instance: string, log: Logger) {
    this.#api = api;
    this.#instance = instance;
    this.#log = log;
  }

  /** Records one Event. `note` must never hold a key value (callers pass names and ids only). */
  async record(
    target: EventTarget,
    type: 'Normal' | 'Warning',
    reason: string,
    note: string,
    action = 'Reconcile',
  ): Promise<void> {
    try {
      await this.#api.createNamespacedEvent({
        namespace: target.namespace,
        body: {
          metadata: { generateName: `${target.name}-`, namespace: target.namespace },
          eventTime: microTime(new Date()) as unknown as Date,
          reportingController: 'keystile.dev/operator',
          reportingInstance: this.#instance,
          action,
          reason,
          type,
          note: note.slice(0, 1024),
          regarding: {
            kind: target.kind,
            apiVersion: target.apiVersion,
            namespace: target.namespace,
            name: target.name,
            ...(target.uid && { uid: target.uid }),
          },
        },
      });
    } catch (err) {
      this.#log.warn(
        { err: describe(err), reason, object: `${target.kind}/${target.namespace}/${target.name}` },
        'could not record an Event',
      );
    }
  }
}
