import { describe, it, expect } from "vitest";
import fc from "fast-check";
import {
  COMMAND_TYPES,
  MDK_COMMAND_TYPES,
  MDK_NODE_PROTOCOL_VERSION,
  PEER_PROTOCOL_VERSION,
  PeerProtocolError,
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  expectedResponseType,
  opaqueIdentity,
  stateCommitment,
  type PeerRequest,
} from "../../src/peers/protocol.ts";

const A = "a".repeat(64);
const B = "b".repeat(64);

function req(command: unknown, protocol: string = PEER_PROTOCOL_VERSION, request_id = "r1"): string {
  return JSON.stringify({ protocol, request_id, command });
}

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(PeerProtocolError);
    return (e as PeerProtocolError).code;
  }
  throw new Error("expected a PeerProtocolError");
}

describe("peer protocol requests", () => {
  it("round-trips every command type through encode/decode", () => {
    const samples: PeerRequest["command"][] = [
      { type: "initialize", participant: "alice", relay_urls: ["ws://127.0.0.1:7777"], profile: "R1", key_packages: 1, blossom_url: "http://127.0.0.1:3000" },
      { type: "configure_peers", accounts_by_participant: { alice: A, bob: B } },
      { type: "select_group", group: "g", group_id_hex: "00ff" },
      { type: "publish_key_package", action_id: "s0", count: 2, last_resort: false },
      { type: "rotate_key_package", action_id: "s0r" },
      { type: "delete_key_packages", action_id: "s0d" },
      { type: "restart", action_id: "s0x" },
      { type: "probe", action_id: "s0p", events: [{ id: A, pubkey: B, created_at: 1, kind: 445, tags: [["h", A]], content: "x", sig: "00" }] },
      { type: "set_group_image", action_id: "s0i", group: "g", bytes: 2048, version: 2, clear: false },
      { type: "probe_media", action_id: "s0m", attachments: [{ event_id: A, imeta: ["imeta", "url http://x/y"] }] },
      { type: "create_group", action_id: "s1", group: "g", name: "G", member_accounts: [B], initial_admin_accounts: [A] },
      { type: "invite_members", action_id: "s2", member_accounts: [B], group: "g" },
      { type: "remove_members", action_id: "s3", member_accounts: [B] },
      { type: "update_group_data", action_id: "s4", name: "New" },
      { type: "update_group_profile", action_id: "s5", name: null, description: "d" },
      { type: "update_admin_policy", action_id: "s6", admin_accounts: [A, B] },
      { type: "self_update", action_id: "s7" },
      { type: "send_application", action_id: "s8", payload: "hello", kind: 9, tags: [["t", "x"]], media: { filename: "a.jpg", mime_type: "image/jpeg", bytes: 1000, wrong_blob: true } },
      { type: "leave", action_id: "s9" },
      { type: "commit_pending", action_id: "s10" },
      { type: "catch_up", action_id: "s11", full_history: true },
      { type: "observe", action_id: "s12" },
      { type: "set_online", action_id: "s13", online: false },
      { type: "clear_events", action_id: "s14" },
      { type: "pause_maintenance", action_id: "s15" },
      { type: "resume_maintenance", action_id: "s16" },
      { type: "ping", action_id: "s17" },
      { type: "barrier", action_id: "s18", barrier: "b" },
      { type: "shutdown" },
    ];
    expect(new Set(samples.map((s) => s.type))).toEqual(new Set(COMMAND_TYPES));
    for (const command of samples) {
      const line = encodeRequest({ protocol: PEER_PROTOCOL_VERSION, request_id: "x", command });
      expect(line.endsWith("\n")).toBe(true);
      expect(line.slice(0, -1)).not.toContain("\n");
      expect(decodeRequest(line).command).toEqual(command);
    }
  });

  it("rejects non-JSON, wrong versions, unknown commands and bad fields with typed errors", () => {
    expect(codeOf(() => decodeRequest("hello"))).toBe("PEER_PROTOCOL_NOT_JSON");
    expect(codeOf(() => decodeRequest("[1,2]"))).toBe("PEER_PROTOCOL_BAD_SHAPE");
    expect(codeOf(() => decodeRequest(req({ type: "ping", action_id: "a" }, "v0")))).toBe("PEER_PROTOCOL_WRONG_VERSION");
    expect(codeOf(() => decodeRequest(JSON.stringify({ protocol: PEER_PROTOCOL_VERSION, command: { type: "shutdown" } })))).toBe("PEER_PROTOCOL_BAD_SHAPE");
    expect(codeOf(() => decodeRequest(req({ type: "dance" })))).toBe("PEER_PROTOCOL_UNKNOWN_COMMAND");
    expect(codeOf(() => decodeRequest(req({ type: "toString" })))).toBe("PEER_PROTOCOL_UNKNOWN_COMMAND");
    expect(codeOf(() => decodeRequest(req({ type: "ping" })))).toBe("PEER_PROTOCOL_BAD_SHAPE");
    expect(codeOf(() => decodeRequest(req({ type: "ping", action_id: "a", extra: 1 })))).toBe("PEER_PROTOCOL_BAD_SHAPE");
    expect(codeOf(() => decodeRequest(req({ type: "initialize", participant: "p", relay_urls: [] })))).toBe("PEER_PROTOCOL_BAD_SHAPE");
    expect(codeOf(() => decodeRequest(req({ type: "initialize", participant: "p", relay_urls: ["http://x"] })))).toBe("PEER_PROTOCOL_BAD_SHAPE");
    expect(codeOf(() => decodeRequest(req({ type: "initialize", participant: "p", relay_urls: ["ws://x"], profile: "R9" })))).toBe("PEER_PROTOCOL_BAD_SHAPE");
    expect(codeOf(() => decodeRequest(req({ type: "invite_members", action_id: "a", member_accounts: ["npub1xyz"] })))).toBe("PEER_PROTOCOL_BAD_SHAPE");
    expect(codeOf(() => decodeRequest(req({ type: "invite_members", action_id: "a", member_accounts: [A, A] })))).toBe("PEER_PROTOCOL_BAD_SHAPE");
    expect(codeOf(() => decodeRequest(req({ type: "configure_peers", accounts_by_participant: { a: A, b: A } })))).toBe("PEER_PROTOCOL_BAD_SHAPE");
    expect(codeOf(() => decodeRequest(req({ type: "select_group", group: "g", group_id_hex: "ABC" })))).toBe("PEER_PROTOCOL_BAD_SHAPE");
    expect(codeOf(() => decodeRequest(req({ type: "catch_up", action_id: "a", full_history: "yes" })))).toBe("PEER_PROTOCOL_BAD_SHAPE");
    expect(codeOf(() => decodeRequest("x".repeat(1_048_577)))).toBe("PEER_PROTOCOL_FRAME_TOO_LARGE");
  });

  it("checks the media extension: a Blossom URL at initialize, an attachment on send_application", () => {
    const init = (blossom_url: unknown) => req({ type: "initialize", participant: "p", relay_urls: ["ws://x"], blossom_url });
    expect(decodeRequest(init("https://blossom.example/")).command).toMatchObject({ blossom_url: "https://blossom.example/" });
    for (const bad of ["ws://127.0.0.1:1", "127.0.0.1:3000", "http://", 7]) expect(codeOf(() => decodeRequest(init(bad)))).toBe("PEER_PROTOCOL_BAD_SHAPE");
    const send = (media: unknown) => req({ type: "send_application", action_id: "a", payload: "p", media });
    expect(decodeRequest(send({ filename: "f.bin", mime_type: "application/octet-stream", bytes: 1 })).command).toMatchObject({ media: { bytes: 1 } });
    const bads: [unknown, string][] = [
      ["file", "media"],
      [{ filename: "", mime_type: "image/png", bytes: 1 }, "media.filename"],
      [{ filename: "f", mime_type: "png", bytes: 1 }, "media.mime_type"],
      [{ filename: "f", mime_type: "image/png", bytes: 0 }, "media.bytes"],
      [{ filename: "f", mime_type: "image/png", bytes: 100 * 1024 * 1024 + 1 }, "media.bytes"],
      [{ filename: "f", mime_type: "image/png", bytes: 1.5 }, "media.bytes"],
      [{ filename: "f", mime_type: "image/png", bytes: 1, wrong_blob: "yes" }, "media.wrong_blob"],
      [{ filename: "f", mime_type: "image/png", bytes: 1, url: "http://x" }, 'unknown field "url"'],
    ];
    for (const [media, where] of bads) {
      try {
        decodeRequest(send(media));
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(PeerProtocolError);
        expect((e as Error).message).toContain(where);
      }
    }
    const image = (extra: Record<string, unknown>) => req({ type: "set_group_image", action_id: "a", bytes: 10, version: 2, ...extra });
    expect(codeOf(() => decodeRequest(image({ version: 3 })))).toBe("PEER_PROTOCOL_BAD_SHAPE");
    expect(codeOf(() => decodeRequest(image({ bytes: -1 })))).toBe("PEER_PROTOCOL_BAD_SHAPE");
    const probe = (attachments: unknown) => req({ type: "probe_media", action_id: "a", attachments });
    for (const bad of ["x", [{ event_id: "zz", imeta: ["imeta"] }], [{ event_id: A, imeta: [] }], [{ event_id: A, imeta: ["imeta"], extra: 1 }]]) {
      expect(codeOf(() => decodeRequest(probe(bad)))).toBe("PEER_PROTOCOL_BAD_SHAPE");
    }
    expect(codeOf(() => decodeRequest(req({ type: "probe_media", action_id: "a", attachments: [] }, MDK_NODE_PROTOCOL_VERSION)))).toBe("PEER_PROTOCOL_UNSUPPORTED");
    // Under MDK's protocol the extension is dropped, not validated.
    expect(decodeRequest(req({ type: "send_application", action_id: "a", payload: "p", media: "junk" }, MDK_NODE_PROTOCOL_VERSION)).command).toEqual({ type: "send_application", action_id: "a", payload: "p" });
  });

  it("names the offending field in the message", () => {
    try {
      decodeRequest(req({ type: "send_application", action_id: "a", payload: 5 }));
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).toContain("command(send_application).payload");
    }
  });

  it("speaks MDK's node protocol: its commands yes, our extensions no, unknown fields tolerated", () => {
    expect(MDK_COMMAND_TYPES).not.toContain("ping");
    expect(MDK_COMMAND_TYPES).toContain("send_application");
    const ok = decodeRequest(req({ type: "send_application", action_id: "a", payload: "p", future_field: 1 }, MDK_NODE_PROTOCOL_VERSION));
    expect(ok.protocol).toBe(MDK_NODE_PROTOCOL_VERSION);
    expect(ok.command).toEqual({ type: "send_application", action_id: "a", payload: "p" });
    // Our extensions are not acted on under MDK's name: they are dropped, not validated.
    const inv = decodeRequest(req({ type: "invite_members", action_id: "a", member_accounts: [A], group: 5 }, MDK_NODE_PROTOCOL_VERSION));
    expect(inv.command).toEqual({ type: "invite_members", action_id: "a", member_accounts: [A] });
    expect(decodeRequest(req({ type: "initialize", participant: "p", root: "/r", relay_urls: ["ws://127.0.0.1:1"], seed: "s" }, MDK_NODE_PROTOCOL_VERSION)).command).toEqual({
      type: "initialize",
      participant: "p",
      root: "/r",
      relay_urls: ["ws://127.0.0.1:1"],
    });
    expect(codeOf(() => decodeRequest(req({ type: "ping", action_id: "a" }, MDK_NODE_PROTOCOL_VERSION)))).toBe("PEER_PROTOCOL_UNSUPPORTED");
    // MDK requires a root on initialize.
    expect(codeOf(() => decodeRequest(req({ type: "initialize", participant: "p", relay_urls: ["ws://127.0.0.1:1"] }, MDK_NODE_PROTOCOL_VERSION)))).toBe("PEER_PROTOCOL_BAD_SHAPE");
  });

  it("never throws anything but PeerProtocolError on arbitrary input", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json().map((j) => j)), (line) => {
        try {
          decodeRequest(line);
        } catch (e) {
          if (!(e instanceof PeerProtocolError)) throw e;
        }
        try {
          decodeResponse(line);
        } catch (e) {
          if (!(e instanceof PeerProtocolError)) throw e;
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("peer protocol responses", () => {
  it("accepts well-formed responses and rejects malformed ones", () => {
    const ok = encodeResponse({ protocol: PEER_PROTOCOL_VERSION, request_id: "r", participant: "p", body: { type: "ack", action_id: "a", published: 1, event_ids: [A] } });
    expect(decodeResponse(ok).body).toEqual({ type: "ack", action_id: "a", published: 1, event_ids: [A] });
    const bad = (body: unknown): string => JSON.stringify({ protocol: PEER_PROTOCOL_VERSION, request_id: "r", participant: null, body });
    expect(codeOf(() => decodeResponse(bad({ type: "ack" })))).toBe("PEER_PROTOCOL_BAD_SHAPE");
    expect(codeOf(() => decodeResponse(bad({ type: "ack", action_id: "a", published: -1 })))).toBe("PEER_PROTOCOL_BAD_SHAPE");
    expect(codeOf(() => decodeResponse(bad({ type: "initialized", account_id: "xyz" })))).toBe("PEER_PROTOCOL_BAD_SHAPE");
    expect(codeOf(() => decodeResponse(bad({ type: "error", code: "x", category: "bad", retryable: false, message: "" })))).toBe("PEER_PROTOCOL_BAD_SHAPE");
    expect(codeOf(() => decodeResponse(bad({ type: "teapot" })))).toBe("PEER_PROTOCOL_BAD_SHAPE");
    expect(codeOf(() => decodeResponse(bad({ type: "observation", action_id: "a", observation: { schema_version: "1" } })))).toBe("PEER_PROTOCOL_BAD_SHAPE");
  });

  it("maps commands to the response type that answers them", () => {
    expect(expectedResponseType("initialize")).toBe("initialized");
    expect(expectedResponseType("observe")).toBe("observation");
    expect(expectedResponseType("barrier")).toBe("barrier_ready");
    expect(expectedResponseType("shutdown")).toBe("shutdown");
    expect(expectedResponseType("send_application")).toBe("ack");
  });

  it("computes MDK's state commitment over the canonical projection JSON", async () => {
    const { sha256 } = await import("@noble/hashes/sha2.js");
    const { bytesToHex, utf8ToBytes } = await import("@noble/hashes/utils.js");
    const p = { epoch: 3, member_identities: ["alice", "bob"], admin_identities: ["alice"], group_name: "G", group_description: "", member_count: 2 };
    const expected = bytesToHex(
      sha256(utf8ToBytes('{"epoch":3,"member_identities":["alice","bob"],"admin_identities":["alice"],"group_name":"G","group_description":"","member_count":2}')),
    );
    expect(stateCommitment(p)).toBe(expected);
    expect(stateCommitment({ ...p, epoch: 4 })).not.toBe(expected);
    expect(opaqueIdentity(A)).toMatch(/^unknown:[0-9a-f]{16}$/);
  });
});
