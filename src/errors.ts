/**
 * The project's typed error. Every rejection names what was wrong through a stable `code`
 * (for machines) and a message (for people). Modules subclass it or use it with their own codes.
 */
export class HarnessError extends Error {
  readonly code: string;
  readonly details: Record<string, unknown>;

  constructor(code: string, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }

  toJSON(): { name: string; code: string; message: string; details: Record<string, unknown> } {
    return { name: this.name, code: this.code, message: this.message, details: this.details };
  }
}

export function isHarnessError(e: unknown): e is HarnessError {
  return e instanceof HarnessError;
}

/** Render any thrown value as one line, for reports and logs. */
export function describeError(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
