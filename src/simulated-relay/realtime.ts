/**
 * A Scheduler on real timers, for serving the simulated relay to real clients (the
 * WebSocket server). Same interface as the VirtualScheduler; time is the wall clock.
 */
import type { Scheduler, Task } from "../sim/clock.ts";

export class RealtimeScheduler implements Scheduler {
  private count = 0;
  readonly taskErrors: { at: number; label: string; error: unknown }[] = [];
  private idleWaiters: (() => void)[] = [];

  now(): number {
    return Date.now();
  }

  get pending(): number {
    return this.count;
  }

  at(atMs: number, task: Task, label = "task"): void {
    this.count++;
    const run = async (): Promise<void> => {
      try {
        await task();
      } catch (error) {
        this.taskErrors.push({ at: Date.now(), label, error });
      } finally {
        this.count--;
        if (this.count === 0) for (const w of this.idleWaiters.splice(0)) w();
      }
    };
    const delay = atMs - Date.now();
    if (delay <= 0) setImmediate(run);
    else setTimeout(run, delay);
  }

  after(delayMs: number, task: Task, label = "task"): void {
    if (!(delayMs >= 0)) throw new RangeError(`negative or invalid delay ${delayMs}`);
    this.at(Date.now() + delayMs, task, label);
  }

  /** Waits until no task is pending. Returns 0 (tasks run on their own timers). */
  async runUntilIdle(): Promise<number> {
    if (this.count > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
    return 0;
  }

  async advance(ms: number): Promise<number> {
    await new Promise((r) => setTimeout(r, ms));
    return 0;
  }
}
