import { describe, expect, it } from 'vitest';
import { alertFor, alertMessage } from './alerts.ts';

describe('alertFor', () => {
  it('announces a threshold when usage reaches it, and records it', () => {
    expect(alertFor([80, 100], 7999, 10_000, undefined)).toEqual({ alerted: undefined, announce: undefined });
    expect(alertFor([80, 100], 8000, 10_000, undefined)).toEqual({ alerted: 80, announce: 80 });
  });

  it('announces nothing again for a threshold already announced this period', () => {
    expect(alertFor([80, 100], 9000, 10_000, 80)).toEqual({ alerted: 80, announce: undefined });
    expect(alertFor([80, 100], 10_000, 10_000, 80)).toEqual({ alerted: 100, announce: 100 });
    expect(alertFor([80, 100], 12_000, 10_000, 100)).toEqual({ alerted: 100, announce: undefined });
  });

  it('announces only the highest of several crossed at once', () => {
    expect(alertFor([50, 80, 100], 10_000, 10_000, undefined)).toEqual({ alerted: 100, announce: 100 });
  });

  it('keeps what was announced when a grant lowers the share', () => {
    expect(alertFor([80], 8000, 20_000, 80)).toEqual({ alerted: 80, announce: undefined });
  });

  it('writes the message people read', () => {
    expect(alertMessage(80, 'gold', '2026-11-01', 8000, 10_000)).toBe(
      "80% of plan gold's quota used in period 2026-11-01 (8,000 of 10,000)",
    );
  });
});
