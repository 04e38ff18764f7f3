/**
 * The peer process supervisor: spawns a peer command, speaks the peer protocol to it over stdio
 * (one request at a time), enforces a timeout per request, and turns every way a peer can go
 * wrong into a typed error:
 *
 * - it cannot be started              → PEER_SPAWN_FAILED
 * - it exits or is killed by a signal → PEER_EXITED (exit code / signal, last stderr lines)
 * - it does not answer in time        → PEER_TIMEOUT
 * - it writes something not JSON, not a protocol message, or too long → PEER_GARBAGE
 * - it answers another request id     → PEER_WRONG_ID
 * - it answers with the wrong kind of response → PEER_UNEXPECTED_RESPONSE
 * - it writes when nobody asked       → PEER_UNSOLICITED
 * - it answers with an error body     → PeerCommandError (PEER_COMMAND_FAILED); not fatal.
 *
 * Every fatal failure kills the child's whole process group (SIGTERM, then SIGKILL after a grace
 * period), rejects the request in flight, and makes every later request fail at once with the
 * same error. `close()` always ends with the child reaped; nothing is left unhandled.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { HarnessError } from "../errors.ts";
import {
  MAX_LINE_BYTES,
  PEER_PROTOCOL_VERSION,
  PeerProtocolError,
  decodeResponse,
  encodeRequest,
  expectedResponseType,
  type PeerCommand,
  type PeerProtocolName,
  type PeerResponse,
  type PeerResponseBody,
} from "./protocol.ts";

export type PeerFailureCode =
  | "PEER_SPAWN_FAILED"
  | "PEER_EXITED"
  | "PEER_TIMEOUT"
  | "PEER_GARBAGE"
  | "PEER_WRONG_ID"
  | "PEER_UNEXPECTED_RESPONSE"
  | "PEER_UNSOLICITED"
  | "PEER_CLOSED";

/** A peer process failed in a way that ends its session. */
export class PeerProcessError extends HarnessError {
  declare readonly code: PeerFailureCode;
  constructor(code: PeerFailureCode, peer: string, message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(code, `peer ${peer}: ${message}`, { peer, ...details }, cause === undefined ? undefined : { cause });
  }
}

/** The peer answered a request with an error body. The session goes on. */
export class PeerCommandError extends HarnessError {
  readonly peerCode: string;
  readonly category: string;
  readonly retryable: boolean;
  constructor(peer: string, command: string, body: { code: string; category: string; retryable: boolean; message: string }) {
    super("PEER_COMMAND_FAILED", `peer ${peer}: ${command} failed with ${body.code} (${body.category}${body.retryable ? ", retryable" : ""}): ${body.message}`, {
      peer,
      command,
      peerCode: body.code,
      category: body.category,
      retryable: body.retryable,
    });
    this.peerCode = body.code;
    this.category = body.category;
    this.retryable = body.retryable;
  }
}

export interface PeerSpawnOptions {
  /** Name used in every error message (the participant label). */
  name: string;
  command: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Protocol name written in requests (default ours). */
  protocol?: PeerProtocolName;
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
  /** Between SIGTERM and SIGKILL (default 1 s). */
  killGraceMs?: number;
  /** How much of the child's stderr to keep for error messages (default 4 KiB). */
  stderrTailBytes?: number;
  /** Called with each stderr chunk (e.g. to forward logs). */
  onStderr?: (chunk: string) => void;
}

export interface PeerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface InFlight {
  requestId: string;
  command: PeerCommand["type"];
  resolve: (r: PeerResponse) => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout;
}

export class PeerProcess {
  readonly name: string;
  readonly protocol: PeerProtocolName;
  private readonly child: ChildProcess;
  private readonly opts: PeerSpawnOptions;
  private buffer = "";
  private stderrTail = "";
  private inFlight: InFlight | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private nextId = 1;
  private failureError: PeerProcessError | undefined;
  private closing = false;
  private exitInfo: PeerExit | undefined;
  private readonly exitPromise: Promise<PeerExit>;
  private killTimer: NodeJS.Timeout | undefined;
  /** Round trips completed, for diagnostics. */
  requests = 0;

  private constructor(child: ChildProcess, opts: PeerSpawnOptions) {
    this.child = child;
    this.opts = opts;
    this.name = opts.name;
    this.protocol = opts.protocol ?? PEER_PROTOCOL_VERSION;
    this.exitPromise = new Promise<PeerExit>((resolve) => {
      child.once("close", (code, signal) => {
        this.exitInfo = { code, signal };
        if (this.killTimer) clearTimeout(this.killTimer);
        this.onExit();
        resolve(this.exitInfo);
      });
    });
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => this.onStdout(chunk));
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      const max = opts.stderrTailBytes ?? 4096;
      this.stderrTail = (this.stderrTail + chunk).slice(-max);
      opts.onStderr?.(chunk);
    });
    // A write to a dead child fails with EPIPE: the exit handler reports it; do not crash.
    child.stdin?.on("error", () => undefined);
    child.on("error", (e) => this.fail(new PeerProcessError("PEER_EXITED", this.name, `process error: ${e.message}`, {}, e)));
  }

  /** Start a peer. Rejects with PEER_SPAWN_FAILED when the command cannot be run. */
  static async spawn(opts: PeerSpawnOptions): Promise<PeerProcess> {
    const child = spawn(opts.command, opts.args ?? [], {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
      // Own process group, so that a peer's helpers die with it.
      detached: true,
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error): void => {
        child.off("spawn", onSpawn);
        reject(new PeerProcessError("PEER_SPAWN_FAILED", opts.name, `cannot start ${JSON.stringify(opts.command)}: ${e.message}`, { command: opts.command }, e));
      };
      const onSpawn = (): void => {
        child.off("error", onError);
        resolve();
      };
      child.once("error", onError);
      child.once("spawn", onSpawn);
    });
    return new PeerProcess(child, opts);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The fatal failure that ended this session, if any. */
  get failure(): PeerProcessError | undefined {
    return this.failureError;
  }

  get exited(): PeerExit | undefined {
    return this.exitInfo;
  }

  get alive(): boolean {
    return this.exitInfo === undefined && this.failureError === undefined && !this.closing;
  }

  /** The last bytes the peer wrote to stderr. */
  get stderr(): string {
    return this.stderrTail;
  }

  /** Resolves when the child has exited and been reaped. */
  waitForExit(): Promise<PeerExit> {
    return this.exitPromise;
  }

  /**
   * Send one command and wait for its answer. Resolves with the response body (never an error
   * body: those reject with PeerCommandError). Requests are sent one at a time, in call order.
   */
  request<C extends PeerCommand>(command: C, opts: { timeoutMs?: number } = {}): Promise<PeerResponseBody> {
    const run = this.queue.then(() => this.send(command, opts.timeoutMs ?? this.opts.timeoutMs ?? 30_000));
    this.queue = run.catch(() => undefined);
    return run.then((response) => {
      const body = response.body;
      if (body.type === "error") throw new PeerCommandError(this.name, command.type, body);
      return body;
    });
  }

  private send(command: PeerCommand, timeoutMs: number): Promise<PeerResponse> {
    if (this.failureError) return Promise.reject(this.failureError);
    if (this.exitInfo || (this.closing && command.type !== "shutdown")) {
      return Promise.reject(new PeerProcessError("PEER_CLOSED", this.name, `cannot send ${command.type}: the peer is closed`));
    }
    const requestId = `${this.name}-${this.nextId++}`;
    let line: string;
    try {
      line = encodeRequest({ protocol: this.protocol, request_id: requestId, command });
    } catch (e) {
      // Our own bad command: not the peer's fault, the session goes on.
      return Promise.reject(e);
    }
    return new Promise<PeerResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(
          new PeerProcessError("PEER_TIMEOUT", this.name, `no answer to ${command.type} (${requestId}) within ${timeoutMs} ms; the peer hangs`, {
            command: command.type,
            requestId,
            timeoutMs,
          }),
        );
      }, timeoutMs);
      this.inFlight = { requestId, command: command.type, resolve, reject, timer };
      this.child.stdin?.write(line);
    });
  }

  private onStdout(chunk: string): void {
    if (this.failureError) return;
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf("\n")) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      if (line.trim() === "") continue;
      this.onLine(line);
      if (this.failureError) return;
    }
    if (Buffer.byteLength(this.buffer, "utf8") > MAX_LINE_BYTES) {
      this.fail(new PeerProcessError("PEER_GARBAGE", this.name, `wrote more than ${MAX_LINE_BYTES} bytes without a newline`, {}));
    }
  }

  private onLine(line: string): void {
    const current = this.inFlight;
    if (!current) {
      this.fail(new PeerProcessError("PEER_UNSOLICITED", this.name, `wrote a line nobody asked for: ${preview(line)}`, { line: preview(line) }));
      return;
    }
    let response: PeerResponse;
    try {
      response = decodeResponse(line);
    } catch (e) {
      const pe = e as PeerProtocolError;
      this.fail(new PeerProcessError("PEER_GARBAGE", this.name, `answered ${current.command} with garbage (${pe.message})`, { command: current.command, protocolCode: pe.code, line: preview(line) }, e));
      return;
    }
    if (response.request_id !== current.requestId) {
      this.fail(
        new PeerProcessError("PEER_WRONG_ID", this.name, `answered request ${JSON.stringify(response.request_id)} while ${current.requestId} (${current.command}) was waiting`, {
          command: current.command,
          expected: current.requestId,
          got: response.request_id,
        }),
      );
      return;
    }
    const expected = expectedResponseType(current.command);
    if (response.body.type !== "error" && response.body.type !== expected) {
      this.fail(
        new PeerProcessError("PEER_UNEXPECTED_RESPONSE", this.name, `answered ${current.command} with "${response.body.type}" (expected "${expected}" or "error")`, {
          command: current.command,
          expected,
          got: response.body.type,
        }),
      );
      return;
    }
    clearTimeout(current.timer);
    this.inFlight = undefined;
    this.requests++;
    current.resolve(response);
  }

  private onExit(): void {
    if (this.failureError) return;
    const { code, signal } = this.exitInfo ?? { code: null, signal: null };
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const tail = this.stderrTail.trim().split("\n").slice(-5).join(" | ");
    const pending = this.inFlight;
    if (this.closing && (!pending || pending.command === "shutdown")) {
      // Exiting is what we asked for; a peer that leaves without answering shutdown is fine.
      if (pending) {
        clearTimeout(pending.timer);
        this.inFlight = undefined;
        pending.reject(new PeerProcessError("PEER_CLOSED", this.name, "exited during shutdown"));
      }
      return;
    }
    this.fail(
      new PeerProcessError("PEER_EXITED", this.name, `${how}${pending ? ` while ${pending.command} was waiting` : ""}${tail ? `; stderr: ${tail}` : ""}`, {
        exitCode: code,
        signal,
        command: pending?.command,
        stderr: this.stderrTail,
      }),
    );
  }

  /** Record the first fatal failure, reject the waiting request, and kill the child. */
  private fail(error: PeerProcessError): void {
    if (this.failureError) return;
    this.failureError = error;
    const pending = this.inFlight;
    this.inFlight = undefined;
    if (pending) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.kill();
  }

  /** SIGTERM the process group now, SIGKILL after the grace period. Idempotent. */
  private kill(): void {
    if (this.exitInfo || this.killTimer) return;
    this.signalGroup("SIGTERM");
    this.killTimer = setTimeout(() => this.signalGroup("SIGKILL"), this.opts.killGraceMs ?? 1000);
    this.killTimer.unref?.();
  }

  private signalGroup(signal: NodeJS.Signals): void {
    const pid = this.child.pid;
    if (pid === undefined || this.exitInfo) return;
    try {
      process.kill(-pid, signal);
    } catch {
      try {
        this.child.kill(signal);
      } catch {
        // already gone
      }
    }
  }

  /**
   * End the session: ask the peer to shut down (when it is healthy), wait for it to exit, kill
   * it otherwise. Always resolves once the child is reaped; never throws.
   */
  async close(opts: { timeoutMs?: number } = {}): Promise<PeerExit & { failure?: PeerProcessError }> {
    if (!this.exitInfo && !this.failureError && !this.closing) {
      // Let a request in flight (e.g. a background ping) finish first: shutdown must not take its
      // place, or its answer would arrive as a wrong id and its timer would outlive the session.
      const wait = opts.timeoutMs ?? 5000;
      let waited: NodeJS.Timeout | undefined;
      await Promise.race([this.queue, new Promise<void>((r) => (waited = setTimeout(r, wait)))]);
      clearTimeout(waited);
      this.closing = true;
      try {
        if (!this.inFlight) await this.send({ type: "shutdown" }, wait).catch(() => undefined);
      } finally {
        this.child.stdin?.end();
      }
      const timer = setTimeout(() => this.kill(), opts.timeoutMs ?? 5000);
      timer.unref?.();
      const exit = await this.exitPromise;
      clearTimeout(timer);
      return { ...exit, failure: this.failureError };
    }
    this.closing = true;
    this.kill();
    const exit = await this.exitPromise;
    return { ...exit, failure: this.failureError };
  }
}

function preview(line: string): string {
  return line.length > 120 ? `${line.slice(0, 120)}…` : line;
}
