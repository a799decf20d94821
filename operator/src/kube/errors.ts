/** Reading the API server's errors: status codes, and how long a 429 asks us to wait. */
import { ApiException } from '@kubernetes/client-node';

/** The HTTP status of an API error, or undefined for anything else (a network error). */
export function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

/** True for 404. */
export const isNotFound = (err: unknown): boolean => statusOf(err) === 404;
/** True for 409 (a conflict: the object changed since we read it, or exists already). */
export const isConflict = (err: unknown): boolean => statusOf(err) === 409;

/**
 * True for the API server refusing the object itself (a 4xx: invalid, forbidden, too large), which a
 * retry of the same write meets again; not for a conflict or a missing object (a cache behind, which a
 * retry from a fresh read resolves), a 429 (wait and retry), a 5xx or a network error (transient).
 */
export function isRefused(err: unknown): boolean {
  const code = statusOf(err);
  return code !== undefined && code >= 400 && code < 500 && code !== 404 && code !== 409 && code !== 429;
}

/**
 * True for the API server refusing to create anything in a namespace being deleted (403 from the
 * NamespaceLifecycle admission plugin): the namespace's objects are going, nothing needs making there.
 */
export function isNamespaceTerminating(err: unknown): boolean {
  return (
    err instanceof ApiException &&
    err.code === 403 &&
    String(err.body).includes('because it is being terminated')
  );
}

/**
 * For a 429 from API Priority and Fairness (or a 5xx with Retry-After), the delay it asks for, in ms.
 */
export function retryAfterMs(err: unknown): number | undefined {
  if (!(err instanceof ApiException)) return undefined;
  const code = err.code;
  if (code !== 429 && code < 500) return undefined;
  const raw = (err.headers as Record<string, string | undefined>)['retry-after'];
  const seconds = raw === undefined ? (code === 429 ? 1 : undefined) : Number(raw);
  return seconds === undefined || !Number.isFinite(seconds) ? undefined : Math.max(0, seconds) * 1000;
}

/** A short description of an API error for logs and status, without the request or response body. */
export function describe(err: unknown): string {
  if (err instanceof ApiException) {
    let message = '';
    try {
      message = (JSON.parse(String(err.body)) as { message?: string }).message ?? '';
    } catch {
      // not a Status
    }
    return `HTTP ${err.code}${message ? `: ${message}` : ''}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** A Kubernetes MicroTime ("2006-01-02T15:04:05.000000Z"), which the API server parses strictly. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
