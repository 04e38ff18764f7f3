/**
 * Time. Engines never read a clock of their own: whoever drives them passes `now`.
 * In simulation that is a VirtualScheduler (virtual milliseconds, seeded, sequential);
 * against real relays it is the wall clock.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch (virtual in simulation). */
  now(): number;
}

export function nowSeconds(clock: Clock): number {
  return Math.floor(clock.now() / 1000);
}

export const wallClock: Clock = { now: () => Date.now() };

export type Task = () => void | Promise<void>;

export interface Scheduler extends Clock {
  /** Run `task` at virtual time `atMs` (never earlier than now). */
  at(atMs: number, task: Task, label?: string): void;
  /** Run `task` after `delayMs` virtual milliseconds. */
  after(delayMs: number, task: Task, label?: string): void;
  /** Keep running tasks until none is left (or a limit is hit). */
  runUntilIdle(opts?: { maxTasks?: number; untilMs?: number }): Promise<number>;
  /** Run every task due within the next `ms`, then set the clock to now + ms. */
  advance(ms: number): Promise<number>;
  /** Number of tasks waiting. */
  readonly pending: number;
}

interface Entry {
  at: number;
  seq: number;
  task: Task;
  label: string;
}

/**
 * A deterministic discrete-event scheduler. Tasks run one at a time in (time, insertion order);
 * each task's promise is awaited before the next starts, so the order of effects is a function
 * of the seed and the script alone.
 */
export class VirtualScheduler implements Scheduler {
  private heap: Entry[] = [];
  private seq = 0;
  private current: number;
  /** Errors thrown by tasks; the run goes on and the driver decides what to do with them. */
  readonly taskErrors: { at: number; label: string; error: unknown }[] = [];

  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  get pending(): number {
    return this.heap.length;
  }

  at(atMs: number, task: Task, label = "task"): void {
    this.push({ at: Math.max(atMs, this.current), seq: this.seq++, task, label });
  }

  after(delayMs: number, task: Task, label = "task"): void {
    if (!(delayMs >= 0)) throw new RangeError(`negative or invalid delay ${delayMs}`);
    this.at(this.current + delayMs, task, label);
  }

  async runUntilIdle(opts: { maxTasks?: number; untilMs?: number } = {}): Promise<number> {
    const max = opts.maxTasks ?? 10_000_000;
    let ran = 0;
    while (this.heap.length > 0 && ran < max) {
      const top = this.heap[0] as Entry;
      if (opts.untilMs !== undefined && top.at > opts.untilMs) break;
      this.pop();
      this.current = Math.max(this.current, top.at);
      try {
        await top.task();
      } catch (error) {
        this.taskErrors.push({ at: this.current, label: top.label, error });
      }
      ran++;
    }
    if (opts.untilMs !== undefined && this.current < opts.untilMs && (this.heap.length === 0 || (this.heap[0] as Entry).at > opts.untilMs)) {
      this.current = opts.untilMs;
    }
    return ran;
  }

  async advance(ms: number): Promise<number> {
    return this.runUntilIdle({ untilMs: this.current + ms });
  }

  private less(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i] as Entry, h[p] as Entry)) break;
      [h[i], h[p]] = [h[p] as Entry, h[i] as Entry];
      i = p;
    }
  }

  private pop(): Entry | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l] as Entry, h[m] as Entry)) m = l;
        if (r < h.length && this.less(h[r] as Entry, h[m] as Entry)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m] as Entry, h[i] as Entry];
        i = m;
      }
    }
    return top;
  }
}
