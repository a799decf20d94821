/**
 * The one decision path both transports share (Authorino's `pkg/service/auth.go` habit): decide, then
 * count, time and log the decision. Errors are caught here, at the transport boundary, counted by
 * class and answered fail-closed; nothing is swallowed silently.
 */
import type { Logger } from 'pino';
import type { CatalogView } from '../catalog/catalog.ts';
import { type Decision, deny } from '../decision/answers.ts';
import type { Clock } from '../decision/clock.ts';
import { type CheckRequest, type DecideContext, decideInto, settleOnce } from '../decision/decide.ts';
import { Reason } from '../errors.ts';
import type { CounterStore } from '../store/store.ts';
import type { EnforcerMetrics, Transport } from '../telemetry/metrics.ts';

/** What a check needs. */
export interface CheckDeps {
  readonly catalog: CatalogView;
  readonly store: CounterStore;
  readonly clock: Clock;
  readonly context: DecideContext;
  /** Undefined: not counted (tests, benchmarks of the bare decision). */
  readonly metrics: EnforcerMetrics | undefined;
  readonly logger: Logger;
}

/** Decides checks and records them. */
export class Checker {
  readonly #deps: CheckDeps;

  /** A checker over `deps`. */
  constructor(deps: CheckDeps) {
    this.#deps = deps;
  }

  /** The settings decisions are made with. */
  get context(): DecideContext {
    return this.#deps.context;
  }

  /**
   * Decides one check and hands the recorded decision to `send`, exactly once: synchronously when the
   * store is (the memory store), else when the store answers. Never throws. A `send` that throws (a
   * transport bug; it must answer something first) is counted under `send` and logged: after an async
   * store, a throw would otherwise be an unhandled rejection, and end the process.
   */
  answer(request: CheckRequest, transport: Transport, send: (decision: Decision) => void): void {
    const started = performance.now();
    const d = this.#deps;
    let pending = true;
    try {
      decideInto(d.catalog.current(), request, d.store, d.clock, d.context, (decision) => {
        pending = false;
        this.#deliver(decision, transport, started, send);
      });
    } catch (err) {
      // A bug before the decision was handed over; one handed over is not answered twice.
      if (pending) this.#deliver(this.failed(transport, 'decide', err), transport, started, send);
    }
  }

  /** Records a decision and hands it to `send`; a `send` that throws is counted and logged, never rethrown. */
  #deliver(
    decision: Decision,
    transport: Transport,
    started: number,
    send: (decision: Decision) => void,
  ): void {
    try {
      send(this.#record(decision, transport, started));
    } catch (err) {
      this.failed(transport, 'send', err);
    }
  }

  /** {@link answer} as a value: the decision, or a promise of it. Never throws, never rejects. */
  check(request: CheckRequest, transport: Transport): Decision | Promise<Decision> {
    return settleOnce((done) => {
      this.answer(request, transport, done);
    });
  }

  /**
   * The answer to a check that could not be decided normally (an unparsable request, a bug): counted
   * under `errorClass` (`malformed`, `error`, `decide`, `send`), logged, and denied (403 for a malformed
   * request, else 503).
   */
  failed(transport: Transport, errorClass: string, err?: unknown): Decision {
    this.#deps.metrics?.checkError(transport, errorClass);
    if (errorClass === 'malformed') {
      this.#deps.logger.debug({ transport, errorClass }, 'malformed check request');
      return deny(Reason.MalformedRequest, {}, this.#deps.context.options);
    }
    this.#deps.logger.error(
      {
        transport,
        errorClass,
        err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err),
      },
      'check failed',
    );
    return deny(Reason.InternalError, {}, this.#deps.context.options, { 'retry-after': '1' });
  }

  #record(decision: Decision, transport: Transport, started: number): Decision {
    this.#deps.metrics?.decided(decision, transport, (performance.now() - started) / 1000);
    const log = this.#deps.logger;
    if (decision.wouldDeny !== undefined) {
      log.info(
        {
          stage: decision.stage,
          plan: decision.plan,
          keyId: decision.keyId,
          route: decision.route,
          wouldDeny: decision.wouldDeny,
        },
        'shadow mode: would have denied',
      );
    } else if (!decision.allowed && log.isLevelEnabled('debug')) {
      log.debug(
        {
          stage: decision.stage,
          plan: decision.plan,
          keyId: decision.keyId,
          reason: decision.reason,
          status: decision.status,
        },
        'denied',
      );
    }
    return decision;
  }
}
