/**
 * How often the launcher restarts a server that died: at most `limit` restarts within
 * `windowMinutes`, waiting 1 s, 2 s, 4 s … (up to 30 s) before each, so a server that cannot stay
 * up ends the stack with a clear message instead of a restart loop.
 */
export class RestartBudget {
  private readonly restarts: number[] = [];

  constructor(
    readonly limit = 5,
    readonly windowMinutes = 10,
    private readonly now: () => number = Date.now,
  ) {}

  /** Restarts used within the window, this one included once `next()` granted it. */
  get used(): number {
    return this.restarts.length;
  }

  /** The delay before the next restart, or undefined when the budget is spent. */
  next(): number | undefined {
    const since = this.now() - this.windowMinutes * 60_000;
    while (this.restarts.length && this.restarts[0]! < since) this.restarts.shift();
    if (this.restarts.length >= this.limit) return undefined;
    this.restarts.push(this.now());
    return Math.min(30_000, 1_000 * 2 ** (this.restarts.length - 1));
  }
}
