/**
 * The one logger: JSON lines (pino), object first, with one redaction list applied to everything, so
 * no key value, SecretKey or signature reaches a log line (STYLE.md habit 11). The enforcer never puts
 * a key value in a log object in the first place; the list is the second line of defence.
 */
import { pino, type Logger } from 'pino';

/** Paths pino censors wherever they appear in a logged object. */
export const REDACT_PATHS: readonly string[] = Object.freeze([
  'key',
  'value',
  'secretKey',
  'secretKeys',
  'signature',
  'authorization',
  'data',
  'stringData',
  'headers["x-api-key"]',
  'headers.authorization',
  'headers["x-date"]',
  '*.key',
  '*.value',
  '*.secretKey',
  '*.secretKeys',
  '*.signature',
  '*.authorization',
  '*.data',
  '*.stringData',
  '*.headers["x-api-key"]',
  '*.headers.authorization',
]);

/** Makes the logger; `destination` is for tests (a stream to read lines from). */
export function makeLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      name: 'keystile-enforcer',
      level,
      redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
      base: { pid: process.pid },
    },
    destination ?? process.stdout,
  );
}
