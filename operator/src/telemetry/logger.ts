/**
 * The one logger: JSON lines (pino), object first, with one redaction list applied to everything, so no
 * key value, SecretKey or Secret data reaches a log line (STYLE.md habit 11).
 */
import { pino, type Logger } from 'pino';

/** Paths pino censors wherever they appear in a logged object. */
export const REDACT_PATHS: readonly string[] = [
  'value',
  'secretKey',
  'data',
  'stringData',
  '*.value',
  '*.secretKey',
  '*.data',
  '*.stringData',
  'headers["x-api-key"]',
  'headers.authorization',
  '*.headers["x-api-key"]',
  '*.headers.authorization',
];

/** Makes the logger. `destination` is for tests (a stream to read lines from). */
export function makeLogger(level: string, name: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { name, level, redact: { paths: [...REDACT_PATHS], censor: '[redacted]' }, base: { pid: process.pid } },
    destination ?? process.stdout,
  );
}
