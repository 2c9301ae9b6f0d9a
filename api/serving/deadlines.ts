/**
 * Per-request timeouts without a timer per request. Every request of a gateway waits the same
 * `timeoutMs`, so deadlines fall in the order the requests started: a FIFO queue whose oldest
 * entries one timer checks. A request costs an object and an array push, where setTimeout +
 * clearTimeout (a Timeout object and a timer list entry each) were a visible share of a
 * prediction's CPU. A timeout fires up to `timeoutMs / 20` (at most 100 ms) late.
 */

/** One request waiting for its answer; `expire` runs once if its deadline passes first. */
export interface Deadline {
  /** Set when the request finished (answered or failed): it no longer expires. */
  settled: boolean;
  expire(): void;
}

export interface DeadlineQueue {
  /** Starts the clock for `entry`: `entry.expire()` runs after `timeoutMs` unless it settles first. */
  add(entry: Deadline): void;
  /** Entries still in the queue (settled ones leave at the next check). */
  size(): number;
}

interface Queued {
  at: number;
  entry: Deadline;
}

export function createDeadlineQueue(timeoutMs: number, now: () => number = performance.now.bind(performance)): DeadlineQueue {
  const tick = Math.max(1, Math.min(100, Math.floor(timeoutMs / 20)));
  let queue: Queued[] = [];
  let head = 0;
  let timer: NodeJS.Timeout | undefined;

  const check = () => {
    const t = now();
    while (head < queue.length) {
      const queued = queue[head]!;
      if (!queued.entry.settled) {
        if (queued.at > t) break;
        queued.entry.settled = true;
        queued.entry.expire();
      }
      head++;
    }
    if (head === queue.length) {
      queue = [];
      head = 0;
      clearInterval(timer);
      timer = undefined;
    } else if (head > 1024 && head * 2 > queue.length) {
      queue = queue.slice(head);
      head = 0;
    }
  };

  return {
    add(entry) {
      queue.push({ at: now() + timeoutMs, entry });
      if (timer === undefined) {
        timer = setInterval(check, tick);
        // A waiting request keeps its socket, and so the process, alive; the check itself need not.
        timer.unref();
      }
    },
    size: () => queue.length - head,
  };
}
