import { describe, it, expect, afterEach } from "vitest";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { PeerCommandError, PeerProcess, PeerProcessError } from "../../src/peers/process.ts";
import { PeerProtocolError, type PeerCommand } from "../../src/peers/protocol.ts";

const FIXTURE = fileURLToPath(new URL("./fixtures/misbehaving-peer.mjs", import.meta.url));
const INIT: PeerCommand = { type: "initialize", participant: "p", relay_urls: ["ws://127.0.0.1:1"] };

const started: PeerProcess[] = [];
async function peer(mode: string, target = "", timeoutMs = 5000): Promise<PeerProcess> {
  const p = await PeerProcess.spawn({ name: `fx-${mode}`, command: process.execPath, args: [FIXTURE, mode, target], timeoutMs, killGraceMs: 300 });
  started.push(p);
  return p;
}

/** True when the process no longer runs (absent, or a zombie waiting for a reaper we do not own). */
function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

async function failure(p: Promise<unknown>): Promise<PeerProcessError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(PeerProcessError);
    return e as PeerProcessError;
  }
  throw new Error("expected the request to fail");
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((p) => p.close()));
});

describe("peer process supervisor", () => {
  it("runs a healthy session and shuts the peer down cleanly", async () => {
    const p = await peer("good");
    const init = await p.request(INIT, { timeoutMs: 30_000 });
    expect(init).toEqual({ type: "initialized", account_id: "a".repeat(64) });
    expect(await p.request({ type: "ping", action_id: "x" })).toMatchObject({ type: "ack", action_id: "x" });
    const obs = await p.request({ type: "observe", action_id: "o" });
    expect(obs.type).toBe("observation");
    // Requests made together are answered in order, one at a time.
    const both = await Promise.all([p.request({ type: "ping", action_id: "1" }), p.request({ type: "ping", action_id: "2" })]);
    expect(both.map((b) => (b as { action_id: string }).action_id)).toEqual(["1", "2"]);
    const exit = await p.close();
    expect(exit).toMatchObject({ code: 0, signal: null, failure: undefined });
    expect(isGone(p.pid as number)).toBe(true);
  });

  it("closes after the request in flight is answered, not in its place", async () => {
    // A background ping in flight when the session closes: shutdown used to take its place, so
    // the ping's answer came back under a wrong id and its timer kept the harness alive.
    const p = await peer("slow-on", "ping", 20_000);
    await p.request(INIT, { timeoutMs: 30_000 });
    const ping = p.request({ type: "ping", action_id: "bg" });
    const exit = await p.close();
    expect(await ping).toMatchObject({ type: expect.any(String) });
    expect(exit.failure).toBeUndefined();
    expect(exit.code).toBe(0);
  });

  it("reports a peer that cannot be started", async () => {
    await expect(PeerProcess.spawn({ name: "nope", command: "/nonexistent/peer-binary" })).rejects.toMatchObject({ code: "PEER_SPAWN_FAILED" });
  });

  it("reports a peer that dies mid-request, with its exit code and stderr", async () => {
    const p = await peer("die-on", "ping");
    await p.request(INIT, { timeoutMs: 30_000 }); // a loaded machine may take longer than the short timeout to start node
    const e = await failure(p.request({ type: "ping", action_id: "x" }));
    expect(e.code).toBe("PEER_EXITED");
    expect(e.message).toContain("exited with code 3 while ping was waiting");
    expect(e.message).toContain("dying on ping");
    expect(e.details.exitCode).toBe(3);
    // Every later request fails at once with the same error.
    await expect(p.request({ type: "ping", action_id: "y" })).rejects.toBe(e);
    const exit = await p.close();
    expect(exit.failure).toBe(e);
  });

  it("reports a peer killed by a signal", async () => {
    const p = await peer("signal-on", "observe");
    const e = await failure(p.request({ type: "observe", action_id: "o" }));
    expect(e.code).toBe("PEER_EXITED");
    expect(e.details.signal).toBe("SIGKILL");
  });

  it("reports a peer that hangs, and kills it", async () => {
    const p = await peer("hang-on", "ping", 300);
    await p.request(INIT, { timeoutMs: 30_000 }); // a loaded machine may take longer than the short timeout to start node
    const e = await failure(p.request({ type: "ping", action_id: "x" }));
    expect(e.code).toBe("PEER_TIMEOUT");
    expect(e.message).toContain("within 300 ms");
    const exit = await p.waitForExit();
    expect(exit.signal).toBe("SIGTERM");
    expect(isGone(p.pid as number)).toBe(true);
  });

  it("escalates to SIGKILL when a hung peer ignores SIGTERM", async () => {
    const p = await peer("stubborn-hang-on", "ping", 300);
    await p.request(INIT, { timeoutMs: 30_000 }); // a loaded machine may take longer than the short timeout to start node
    expect((await failure(p.request({ type: "ping", action_id: "x" }))).code).toBe("PEER_TIMEOUT");
    expect((await p.waitForExit()).signal).toBe("SIGKILL");
  });

  it("kills the peer's whole process group", async () => {
    const p = await peer("grandchild-hang-on", "ping", 500);
    await p.request(INIT, { timeoutMs: 30_000 }); // a loaded machine may take longer than the short timeout to start node
    expect((await failure(p.request({ type: "ping", action_id: "x" }))).code).toBe("PEER_TIMEOUT");
    await p.waitForExit();
    const m = /grandchild (\d+)/.exec(p.stderr);
    expect(m).not.toBeNull();
    const gpid = Number(m?.[1]);
    for (let i = 0; i < 50 && !isGone(gpid); i++) await new Promise((r) => setTimeout(r, 20));
    expect(isGone(gpid)).toBe(true);
  });

  it("reports garbage: not JSON", async () => {
    const p = await peer("garbage-on", "ping");
    const e = await failure(p.request({ type: "ping", action_id: "x" }));
    expect(e.code).toBe("PEER_GARBAGE");
    expect(e.details.protocolCode).toBe("PEER_PROTOCOL_NOT_JSON");
    expect(e.cause).toBeInstanceOf(PeerProtocolError);
    await p.waitForExit();
  });

  it("reports garbage: a line longer than 1 MiB", async () => {
    const p = await peer("flood-on", "ping");
    const e = await failure(p.request({ type: "ping", action_id: "x" }));
    expect(e.code).toBe("PEER_GARBAGE");
    expect(e.message).toContain("without a newline");
  });

  it("reports garbage: wrong shape", async () => {
    const p = await peer("bad-shape-on", "ping");
    const e = await failure(p.request({ type: "ping", action_id: "x" }));
    expect(e.code).toBe("PEER_GARBAGE");
    expect(e.details.protocolCode).toBe("PEER_PROTOCOL_BAD_SHAPE");
  });

  it("reports an answer to the wrong request id", async () => {
    const p = await peer("wrong-id-on", "ping");
    const e = await failure(p.request({ type: "ping", action_id: "x" }));
    expect(e.code).toBe("PEER_WRONG_ID");
    expect(e.details.got).toBe("someone-else");
  });

  it("reports the wrong kind of response", async () => {
    const p = await peer("wrong-type-on", "ping");
    const e = await failure(p.request({ type: "ping", action_id: "x" }));
    expect(e.code).toBe("PEER_UNEXPECTED_RESPONSE");
  });

  it("reports a line nobody asked for", async () => {
    const p = await peer("unsolicited");
    await p.waitForExit();
    expect(p.failure?.code).toBe("PEER_UNSOLICITED");
    await expect(p.request({ type: "ping", action_id: "x" })).rejects.toMatchObject({ code: "PEER_UNSOLICITED" });
  });

  it("passes a peer's error answer on without ending the session", async () => {
    const p = await peer("error-on", "observe");
    const e = await p.request({ type: "observe", action_id: "o" }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PeerCommandError);
    expect((e as PeerCommandError).peerCode).toBe("unknown_group");
    expect(await p.request({ type: "ping", action_id: "x" })).toMatchObject({ type: "ack" });
    expect(p.alive).toBe(true);
  });

  it("refuses to send an invalid command without harming the session", async () => {
    const p = await peer("good");
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    await expect(p.request({ type: "ping" } as any)).rejects.toBeInstanceOf(PeerProtocolError);
    expect(await p.request({ type: "ping", action_id: "ok" })).toMatchObject({ type: "ack" });
  });
});
