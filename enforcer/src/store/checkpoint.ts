/**
 * The memory store's checkpoint: its counters written to a file at an interval and on SIGTERM, and read
 * back at start, so a restart does not hand out a fresh month of quota (nor a fresh burst). The file is
 * NDJSON, written in slices (no stall on many counters) to a temporary file, synced, renamed over the
 * old one and the rename synced, so a crash mid-write leaves the previous checkpoint whole and a crash
 * after it keeps the new one. It is read back a line at a time: its size is bounded by the counters,
 * not by the longest string V8 can hold. Quota counters of a period that ended more than a day ago
 * (`quotaKept`), and buckets and days past their end, are dropped on load. Counters that change
 * between two checkpoints are lost by a crash (not by SIGTERM): at most one interval's worth.
 *
 * Lines: `["q", key, used, periodEnd, granted, [adjustment ids], [alerted thresholds]]` (the last three
 * only when not empty), `["b", key, tokens, updatedAt, fullAt]`, `["d", key, count, expiresAt]`. A quota
 * counter and the adjustments applied to it are one line: a crash keeps or loses them together.
 */
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { type MemoryStore, quotaKept } from './memory-store.ts';

/** The first line of a checkpoint. */
export const CHECKPOINT_VERSION = 'keystile.dev/counters/v1';

const LINES_PER_SLICE = 5000;

/** Writes the store's counters to `path` (atomically: a temporary file, then a rename). */
export async function writeCheckpoint(store: MemoryStore, path: string, now: number): Promise<number> {
  const tmp = `${path}.tmp-${process.pid}`;
  const handle = await open(tmp, 'w', 0o600);
  let count = 0;
  try {
    await handle.write(`${JSON.stringify({ version: CHECKPOINT_VERSION, savedAt: now })}\n`);
    let lines: string[] = [];
    const flush = async (): Promise<void> => {
      if (lines.length === 0) return;
      await handle.write(`${lines.join('\n')}\n`);
      lines = [];
      await yieldToLoop();
    };
    // Snapshots of the keys first: the maps may change between slices.
    for (const [key, q] of [...store.quotas()]) {
      if (!quotaKept(q.periodEnd, now)) continue;
      const plain = q.granted === 0 && q.adjustments.length === 0 && q.alerts.length === 0;
      lines.push(
        JSON.stringify(
          plain
            ? ['q', key, q.used, q.periodEnd]
            : ['q', key, q.used, q.periodEnd, q.granted, q.adjustments, q.alerts],
        ),
      );
      count++;
      if (lines.length >= LINES_PER_SLICE) await flush();
    }
    for (const [key, d] of [...store.days()]) {
      if (d.expiresAt <= now) continue;
      lines.push(JSON.stringify(['d', key, d.count, d.expiresAt]));
      count++;
      if (lines.length >= LINES_PER_SLICE) await flush();
    }
    for (const [key, b] of [...store.buckets()]) {
      if (b.fullAt <= now) continue;
      lines.push(JSON.stringify(['b', key, b.tokens, b.updatedAt, b.fullAt]));
      count++;
      if (lines.length >= LINES_PER_SLICE) await flush();
    }
    await flush();
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
  await syncDirectory(dirname(path));
  return count;
}

/**
 * Makes a rename in `dir` durable (its entry is written with the directory, not with the file). A
 * filesystem that cannot sync a directory (EINVAL and the like, as some network filesystems answer)
 * keeps the checkpoint as durable as it can: the file itself was synced.
 */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (err) {
    if (!DIRECTORY_SYNC_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    await handle.close();
  }
}

const DIRECTORY_SYNC_UNSUPPORTED: ReadonlySet<string> = new Set(['EINVAL', 'ENOTSUP', 'EBADF', 'EISDIR']);

/** What {@link readCheckpoint} found. */
export interface CheckpointRead {
  /** Counters restored. */
  readonly restored: number;
  /** Lines skipped (malformed, or of a period that ended). */
  readonly skipped: number;
  /** Whether the file existed. */
  readonly found: boolean;
}

/**
 * Reads a checkpoint into `store`. A missing file restores nothing; a file that is not a checkpoint of
 * this version (another version, an empty or damaged first line) or that cannot be read throws an error
 * naming it (the caller decides whether to start anyway). Malformed lines are skipped.
 */
export async function readCheckpoint(store: MemoryStore, path: string, now: number): Promise<CheckpointRead> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { restored: 0, skipped: 0, found: false };
    throw err;
  }
  let header = true;
  let restored = 0;
  let skipped = 0;
  try {
    for await (const line of handle.readLines({ encoding: 'utf8', autoClose: false })) {
      if (header) {
        if (parseOrUndefined(line)?.version !== CHECKPOINT_VERSION) {
          throw new Error(`${path} is not a checkpoint of version ${CHECKPOINT_VERSION}`);
        }
        header = false;
      } else if (line !== '') {
        if (restoreLine(store, line, now)) restored++;
        else skipped++;
      }
    }
  } finally {
    await handle.close();
  }
  if (header) throw new Error(`${path} is not a checkpoint of version ${CHECKPOINT_VERSION}: it is empty`);
  return { restored, skipped, found: true };
}

function parseOrUndefined(line: string): { version?: unknown } | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Puts one counter line back into `store`; false when it is malformed or of a period that ended. */
function restoreLine(store: MemoryStore, line: string, now: number): boolean {
  let row: unknown;
  try {
    row = JSON.parse(line);
  } catch {
    return false;
  }
  if (!Array.isArray(row) || typeof row[1] !== 'string') return false;
  const [kind, key, a, b, c, d, e] = row as [unknown, string, unknown, unknown, unknown, unknown, unknown];
  const tail = kind === 'q' ? quotaTail(c, d, e) : undefined;
  if (kind === 'q' && isCount(a) && isTime(b) && quotaKept(b, now) && tail !== undefined) {
    store.restoreQuota(key, { used: a, periodEnd: b, ...tail });
    return true;
  }
  if (kind === 'd' && isCount(a) && isTime(b) && b > now) {
    store.restoreDay(key, { count: a, expiresAt: b });
    return true;
  }
  if (kind === 'b' && isCount(a) && isTime(b) && isTime(c) && c > now) {
    store.restoreBucket(key, { tokens: a, updatedAt: b, fullAt: c });
    return true;
  }
  return false;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

function isTime(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** A quota line's optional tail (granted, adjustment ids, alerted thresholds), or undefined when malformed. */
function quotaTail(
  granted: unknown,
  adjustments: unknown,
  alerts: unknown,
): { granted: number; adjustments: string[]; alerts: number[] } | undefined {
  if (granted === undefined && adjustments === undefined && alerts === undefined) {
    return { granted: 0, adjustments: [], alerts: [] };
  }
  if (
    typeof granted === 'number' &&
    Number.isSafeInteger(granted) &&
    Array.isArray(adjustments) &&
    adjustments.every((id) => typeof id === 'string') &&
    Array.isArray(alerts) &&
    alerts.every((t) => typeof t === 'number' && Number.isFinite(t))
  ) {
    return { granted, adjustments, alerts: alerts as number[] };
  }
  return undefined;
}

/** Checkpoints a store at an interval; {@link stop} writes a last one. */
export class Checkpointer {
  readonly #store: MemoryStore;
  readonly #path: string;
  readonly #now: () => number;
  readonly #onError: (err: unknown) => void;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<unknown> = Promise.resolve();
  #inFlight = 0;

  /** Checkpoints `store` to `path`; `onError` hears of a failed write (the next one tries again). */
  constructor(store: MemoryStore, path: string, now: () => number, onError: (err: unknown) => void) {
    this.#store = store;
    this.#path = path;
    this.#now = now;
    this.#onError = onError;
  }

  /**
   * Starts checkpointing every `intervalMs` (also sweeping counters that are no longer needed). A tick
   * that finds a checkpoint still being written skips: a slow disk never queues up writes.
   */
  start(intervalMs: number): void {
    this.#timer = setInterval(() => {
      if (this.#inFlight === 0) void this.write();
    }, intervalMs);
    this.#timer.unref();
  }

  /** Writes a checkpoint now (after any write in progress). Never rejects. */
  write(): Promise<unknown> {
    this.#inFlight++;
    this.#writing = this.#writing.then(async () => {
      try {
        this.#store.sweep(this.#now());
        await writeCheckpoint(this.#store, this.#path, this.#now());
      } catch (err) {
        this.#onError(err);
        await rm(`${this.#path}.tmp-${process.pid}`, { force: true }).catch(() => undefined);
      } finally {
        this.#inFlight--;
      }
    });
    return this.#writing;
  }

  /** Stops the interval and writes a last checkpoint. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.write();
  }
}
