/**
 * The time source of the decision core. Everything in `decision/` takes the time as a parameter; the
 * transport asks a `Clock` once per request and passes the number down, so tests drive time by hand.
 */

/** A source of the current time. */
export interface Clock {
  /** The current time in epoch milliseconds. Never throws. */
  now(): number;
}

/**
 * The wall clock of the machine (`Date.now()`): the only place under `decision/` that reads real time,
 * and only the process wiring should use it.
 */
export const systemClock: Clock = Object.freeze({
  now: (): number => Date.now(),
});

/** A clock that moves only when told to, for tests. */
export interface ManualClock extends Clock {
  /** Moves the clock by `ms` (negative moves it backwards, as a wall clock may). Throws a RangeError on a non-finite `ms`. */
  advance(ms: number): void;
  /** Sets the clock to `ms` epoch milliseconds. Throws a RangeError on a non-finite `ms`. */
  set(ms: number): void;
}

/** A {@link ManualClock} starting at `start` epoch milliseconds (default 0). Throws a RangeError on a non-finite `start`. */
export function manualClock(start = 0): ManualClock {
  let current = finite(start, 'start');
  return {
    now: (): number => current,
    advance: (ms: number): void => {
      current += finite(ms, 'ms');
    },
    set: (ms: number): void => {
      current = finite(ms, 'ms');
    },
  };
}

function finite(value: number, name: string): number {
  if (!Number.isFinite(value)) {
    throw new RangeError(`manualClock: ${name} must be a finite number, got ${value}`);
  }
  return value;
}
