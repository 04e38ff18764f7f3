import type { Event as NostrEvent } from "nostr-tools";
import { describe, expect, it } from "vitest";
import { checkAuthenticity, checkConvergence, checkDelivery, checkMedia, checkMetadata, checkSecrecy } from "../../src/checkers/invariants/index.ts";
import { History, historyToCapture, historyToKeyring, parseHistory } from "../../src/history.ts";

const hex = (c: string): string => c.repeat(64).slice(0, 64);
const A = hex("a"), B = hex("b"), C = hex("c");

function base(): History {
  let t = 1000;
  const h = new History({ now: () => (t += 10) });
  h.record("alice", "info", "identity", { pubkey: A, secretKey: hex("1") });
  h.record("bob", "info", "identity", { pubkey: B, secretKey: hex("2") });
  h.record("carol", "info", "identity", { pubkey: C, secretKey: hex("3") });
  for (const n of ["alice", "bob", "carol"]) h.record(n, "info", "online", { mode: "start" });
  return h;
}

function ev(id: string, pubkey: string, tags: string[][] = [["h", hex("9")]]): NostrEvent {
  return { id, pubkey, kind: 445, created_at: 1, tags, content: "x", sig: hex("5") + hex("5") };
}

const state = (h: History, agent: string, epoch: number, members: string[], commitment: string, active = true, online = true): void => {
  h.record(agent, "info", "state", { label: "final", groupId: "g1", epoch, members, epochCommitment: commitment, active, online });
};

describe("invariant checkers catch planted violations", () => {
  it("convergence: agreement passes; a diverged epoch or commitment fails; a member that never joined fails", () => {
    const ok = base();
    state(ok, "alice", 2, [A, B], "c1");
    state(ok, "bob", 2, [A, B], "c1");
    expect(checkConvergence(ok.entries).verdict).toBe("pass");

    const split = base();
    state(split, "alice", 2, [A, B], "c1");
    state(split, "bob", 2, [A, B], "c2");
    const r = checkConvergence(split.entries);
    expect(r.verdict).toBe("fail");
    expect(r.message).toMatch(/diverged/);

    const missing = base();
    state(missing, "alice", 2, [A, B, C], "c1");
    state(missing, "bob", 2, [A, B, C], "c1");
    expect(checkConvergence(missing.entries).message).toMatch(/carol is listed/);

    const offline = base();
    state(offline, "alice", 2, [A, B], "c1");
    state(offline, "bob", 1, [A, B], "c0", true, false);
    expect(checkConvergence(offline.entries).verdict).toBe("pass");

    // a label recorded twice (a wait that polled): each agent's latest view counts, in both directions
    const caughtUp = base();
    state(caughtUp, "alice", 1, [A, B], "c0");
    state(caughtUp, "bob", 2, [A, B], "c1");
    state(caughtUp, "alice", 2, [A, B], "c1");
    expect(checkConvergence(caughtUp.entries, { label: "final" }).verdict).toBe("pass");
    const fellBehind = base();
    state(fellBehind, "alice", 2, [A, B], "c1");
    state(fellBehind, "bob", 2, [A, B], "c1");
    state(fellBehind, "bob", 3, [A, B], "c2");
    expect(checkConvergence(fellBehind.entries, { label: "final" }).message).toMatch(/diverged/);
  });

  it("convergence: a peer that declares no epoch commitment is compared on epoch and members only, and the result says so", () => {
    const foreign = base();
    foreign.record("bob", "info", "peer", { implementation: "marmot-ts", capabilities: ["profile:R1", "no-epoch-commitment"] });
    state(foreign, "alice", 2, [A, B], "c1");
    state(foreign, "bob", 2, [A, B], "");
    const r = checkConvergence(foreign.entries);
    expect(r.verdict).toBe("pass");
    expect(r.message).toMatch(/epoch and members only .*bob gives no epoch commitment/);

    const apart = base();
    apart.record("bob", "info", "peer", { implementation: "marmot-ts", capabilities: ["no-epoch-commitment"] });
    state(apart, "alice", 2, [A, B], "c1");
    state(apart, "bob", 1, [A, B], "");
    expect(checkConvergence(apart.entries).verdict).toBe("fail");

    // Without the declaration a missing commitment is still a divergence.
    const undeclared = base();
    state(undeclared, "alice", 2, [A, B], "c1");
    state(undeclared, "bob", 2, [A, B], "");
    expect(checkConvergence(undeclared.entries).verdict).toBe("fail");
  });

  it("delivery: a message an online member never decrypted fails; excused members do not", () => {
    const h = base();
    h.record("alice", "ok", "send", { groupId: "g1", epoch: 1, eventId: hex("e"), expectedRecipients: [B, C] });
    h.record("bob", "ok", "decrypt", { eventId: hex("e"), groupId: "g1", epoch: 1, sender: A });
    const r = checkDelivery(h.entries);
    expect(r.verdict).toBe("fail");
    expect(r.message).toMatch(/carol never decrypted/);
    expect(checkDelivery(h.entries, { excused: [{ agent: "carol", reason: "test" }] }).verdict).toBe("pass");
  });

  it("secrecy: decrypting after removal or before joining fails, as does a probe that decrypts", () => {
    const removed = base();
    removed.record("carol", "info", "removed", { groupId: "g1", epoch: 3 });
    removed.record("carol", "ok", "decrypt", { eventId: hex("e"), groupId: "g1", epoch: 3, sender: A });
    expect(checkSecrecy(removed.entries).message).toMatch(/after being removed/);

    const joiner = base();
    joiner.record("carol", "ok", "welcome", { groupId: "g1", epoch: 4 });
    joiner.record("carol", "ok", "decrypt", { eventId: hex("e"), groupId: "g1", epoch: 2, sender: A });
    expect(checkSecrecy(joiner.entries).message).toMatch(/before it joined/);

    const probe = base();
    probe.record("carol", "fail", "probe", { probe: "removed", groupId: "g1", eventId: hex("e"), outcome: "application" });
    expect(checkSecrecy(probe.entries).verdict).toBe("fail");

    const fine = base();
    fine.record("carol", "ok", "probe", { probe: "removed", groupId: "g1", eventId: hex("e"), outcome: "rejected" });
    expect(checkSecrecy(fine.entries).verdict).toBe("pass");
  });

  it("metadata: a reused 445 signing key, an identity-signed 445 and an identity in outer tags all fail", () => {
    const reuse = base();
    reuse.noteEvent(ev(hex("1"), hex("7")), "alice");
    reuse.noteEvent(ev(hex("2"), hex("7")), "alice");
    expect(checkMetadata(reuse.entries).message).toMatch(/reused/);

    const ident = base();
    ident.noteEvent(ev(hex("1"), A), "alice");
    expect(checkMetadata(ident.entries).message).toMatch(/alice's identity key/);

    const tag = base();
    tag.noteEvent(ev(hex("1"), hex("7"), [["h", hex("9")], ["p", B]]), "alice");
    expect(checkMetadata(tag.entries).message).toMatch(/bob's identity in its outer "p" tag/);

    const clean = base();
    clean.noteEvent(ev(hex("1"), hex("7")), "alice");
    clean.noteEvent(ev(hex("2"), hex("8")), "alice");
    expect(checkMetadata(clean.entries).verdict).toBe("pass");
  });

  it("authenticity: an inner author that is not the MLS sender fails", () => {
    const h = base();
    h.record("bob", "ok", "decrypt", { eventId: hex("e"), groupId: "g1", epoch: 1, sender: C, rumorPubkey: A });
    expect(checkAuthenticity(h.entries).verdict).toBe("fail");
  });
});

describe("media checker", () => {
  it("an attachment that did not decrypt, or was never fetched, fails", () => {
    const h = base();
    h.record("alice", "ok", "send", { groupId: "g1", epoch: 1, eventId: hex("e"), expectedRecipients: [B, C], media: true });
    h.record("bob", "ok", "decrypt", { eventId: hex("e"), groupId: "g1", epoch: 1, sender: A });
    h.record("bob", "ok", "media", { eventId: hex("e") });
    expect(checkMedia(h.entries).verdict).toBe("pass");
    h.record("carol", "ok", "decrypt", { eventId: hex("e"), groupId: "g1", epoch: 1, sender: A });
    expect(checkMedia(h.entries).message).toMatch(/carol decrypted .* never fetched/);
    h.record("carol", "fail", "media", { eventId: hex("e"), message: "hash mismatch" });
    expect(checkMedia(h.entries).message).toMatch(/hash mismatch/);
  });
});

describe("history", () => {
  it("round-trips through JSONL, exports capture records with acks and a keyring", () => {
    const h = base();
    const e = ev(hex("1"), hex("7"));
    h.noteEvent(e, "alice", { source: "alice" });
    h.record("alice", "ok", "publish", { eventId: e.id, acks: [{ relay: "wss://r", ok: true, message: "", at: 5 }] });
    h.record("alice", "info", "epoch-keys", { nostrGroupId: hex("9"), epoch: 1, key: hex("4") });
    h.record("bob", "ok", "decrypt", { eventId: e.id, groupId: "g1", nostrGroupId: hex("9"), epoch: 1, sender: A, rumor: { id: hex("6") } });
    const back = parseHistory(h.toJSONL());
    expect(back).toEqual(h.entries);
    const cap = historyToCapture(back);
    expect(cap).toHaveLength(1);
    expect(cap[0]?.acks?.[0]?.ok).toBe(true);
    const kr = historyToKeyring(back);
    expect(kr.groupEventKeys).toEqual([{ nostrGroupId: hex("9"), epoch: 1, key: hex("4") }]);
    expect(kr.recipientSecretKeys).toHaveLength(3);
    expect(kr.observations[0]).toMatchObject({ kind: "application", eventId: e.id, sender: A });
  });

  it("the structural digest ignores random bytes but not structure", () => {
    const mk = (id: string, who: string): string => {
      let t = 0;
      const h = new History({ now: () => ++t });
      h.record(who, "ok", "decrypt", { eventId: id });
      return h.digest();
    };
    expect(mk(hex("1"), "bob")).toBe(mk(hex("2"), "bob"));
    expect(mk(hex("1"), "bob")).not.toBe(mk(hex("1"), "carol"));
  });
});
