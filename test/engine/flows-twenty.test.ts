import { describe, it, expect } from "vitest";
import { getEventHash } from "nostr-tools/pure";
import { createApplicationMessage, createCommit, defaultProposalTypes, makeCustomExtension } from "ts-mls";
import type { CommitConfirmation, NostrEvent, PendingCommit } from "../../src/engine/api.ts";
import { createEngine } from "../../src/engine/engine.ts";
import { getMarmotCiphersuite, marmotAuthService } from "../../src/engine/identity.ts";
import { MemoryStorage } from "../../src/engine/storage-memory.ts";
import { createRng } from "../../src/sim/random.ts";
import { encodeGroupData, EXT } from "./group-data-shim.ts";
import { deliver, forge445, makeEngine, secretFor, show, storedState, RELAYS, T0, type TestEngine } from "./helpers.ts";

/**
 * The end-to-end list at twenty members: invite, messages both ways, self-update,
 * group-data update by an admin and refused from a non-admin, competing commits converging,
 * restart, spoofed inner author rejected, SelfRemove with auto-commit, removal.
 */
describe("engine flows: twenty members, the whole list", () => {
  it("every flow converges at 20 members", async () => {
    const names = Array.from({ length: 20 }, (_, i) => `t20-${i}`);
    const storage5 = new MemoryStorage();
    const rng5 = createRng("t20-5-restart");
    const opts5 = () => ({ secretKey: secretFor(names[5]!), storage: storage5, randomBytes: (n: number) => rng5.bytes(n) });
    const engines: TestEngine[] = [];
    for (let i = 0; i < 20; i++) engines.push(i === 5 ? await createEngine(opts5()) : await makeEngine(names[i]!));
    const alice = engines[0]!;
    let now = T0;
    const g = await alice.createGroup({ name: "twenty", relays: RELAYS, now: now++ });
    const gid = g.groupId;
    const others = (except: TestEngine[]): TestEngine[] => engines.filter((e) => !except.includes(e) && e.group(gid)?.active !== false);
    const commitments = async (es: TestEngine[]): Promise<Set<string>> => new Set(await Promise.all(es.map(async (e) => (await e.inspect(gid)).epochCommitment)));
    /** Confirm, deliver to everyone else, then the same for a re-keying follow-up if there is one. */
    const publish = async (by: TestEngine, p: PendingCommit): Promise<CommitConfirmation> => {
      const conf = await by.confirmCommit(p.id);
      for (const o of await deliver(others([by]), [p.event], now)) expect(o.map((x) => x.kind), show(o)).toContain("commit");
      if (conf.followUpCommit) await publish(by, conf.followUpCommit);
      now++;
      return conf;
    };

    // invite 19 in one commit; all join
    const kps = await Promise.all(engines.slice(1).map((e) => e.createKeyPackage({ relays: RELAYS, now })));
    const inv = await alice.inviteMembers(gid, kps, now++);
    const conf = await alice.confirmCommit(inv.id);
    for (const e of engines.slice(1)) {
      const w = conf.welcomes.find((x) => x.tags.some((t) => t[0] === "p" && t[1] === e.pubkey))!;
      expect((await e.processEvent(w, now))[0]?.kind).toBe("welcome");
    }
    expect(alice.group(gid)!.members).toHaveLength(20);

    // messages both ways
    for (const from of [engines[5]!, alice]) {
      const m = await from.sendMessage(gid, { kind: 9, content: `from ${from.pubkey.slice(0, 6)}` }, now++);
      for (const o of await deliver(others([from]), [m], now)) expect(o[0]).toMatchObject({ kind: "application", sender: from.pubkey });
    }

    // self-update by a non-admin
    await publish(engines[9]!, await engines[9]!.selfUpdate(gid, now));
    expect((await commitments(engines)).size).toBe(1);

    // group-data update by the admin: a second admin and a new name
    await publish(alice, await alice.updateGroupData(gid, { name: "twenty, renamed", adminPubkeys: [alice.pubkey, engines[1]!.pubkey] }, now));
    for (const e of engines) expect(e.group(gid)!.groupData.name).toBe("twenty, renamed");

    // the same change forged by a non-admin (member 5, whose MLS state the test reads) is refused by all
    const ctx = { cipherSuite: await getMarmotCiphersuite(), authService: marmotAuthService };
    const st = await storedState(storage5, gid);
    const data = { ...engines[5]!.group(gid)!.groupData, name: "taken over", adminPubkeys: [engines[5]!.pubkey] };
    const extensions = st.groupContext.extensions.map((e) => (e.extensionType === EXT ? makeCustomExtension({ extensionType: EXT, extensionData: encodeGroupData(data) }) : e));
    const forgedGce = await createCommit({ context: ctx, state: st, extraProposals: [{ proposalType: defaultProposalTypes.group_context_extensions, groupContextExtensions: { extensions } }] });
    const gceEv = await forge445(engines[5]!, gid, forgedGce.commit, now, 201);
    for (const o of await deliver(others([engines[5]!]), [gceEv], now)) expect(o[0]).toMatchObject({ kind: "rejected", error: { code: "COMMIT_UNAUTHORIZED" } });

    // a spoofed inner author (member 5 claims to be alice) is refused by all
    const unsigned = { pubkey: alice.pubkey, created_at: now, kind: 9, tags: [], content: "I am alice" };
    const spoof = await createApplicationMessage({ context: ctx, state: st, message: new TextEncoder().encode(JSON.stringify({ ...unsigned, id: getEventHash(unsigned) })) });
    const spoofEv = await forge445(engines[5]!, gid, spoof.message, now, 202);
    for (const o of await deliver(others([engines[5]!]), [spoofEv], now)) expect(o[0]).toMatchObject({ kind: "rejected", error: { code: "RUMOR_AUTHOR_MISMATCH" } });
    now++;

    // member 5 restarts from its storage and keeps reading and writing
    engines[5] = await createEngine(opts5());
    const afterRestart = await alice.sendMessage(gid, { kind: 9, content: "after your restart" }, now++);
    expect((await engines[5]!.processEvent(afterRestart, now))[0]).toMatchObject({ kind: "application", rumor: { content: "after your restart" } });

    // competing commits from the two admins for one epoch: half see alice's first, half bob's; all converge on alice's (earlier)
    const pa = await alice.selfUpdate(gid, now);
    const pb = await engines[1]!.selfUpdate(gid, now + 1);
    await alice.confirmCommit(pa.id);
    await engines[1]!.confirmCommit(pb.id);
    const rest = engines.slice(2);
    await deliver(rest.slice(0, 9), [pa.event, pb.event], now + 2);
    await deliver(rest.slice(9), [pb.event, pa.event], now + 2);
    await deliver([engines[1]!], [pa.event], now + 2);
    await deliver([alice], [pb.event], now + 2);
    now += 3;
    expect((await commitments(engines)).size).toBe(1);
    for (const e of engines) expect(e.group(gid)!.epoch).toBe(alice.group(gid)!.epoch);

    // SelfRemove by member 12, committed by member 13 (not an admin)
    const leave = await engines[12]!.leaveGroup(gid, now);
    await deliver(others([engines[12]!]), [leave], now++);
    const pc = await engines[13]!.commitPendingProposals(gid, now);
    expect(pc).toBeDefined();
    await publish(engines[13]!, pc!);
    expect(engines[12]!.group(gid)!.active).toBe(false);

    // removal of member 15 by the admin
    await publish(alice, await alice.removeMembers(gid, [engines[15]!.pubkey], now));
    expect(engines[15]!.group(gid)!.active).toBe(false);
    const remaining = engines.filter((e) => e !== engines[12] && e !== engines[15]);
    expect(alice.group(gid)!.members).toHaveLength(18);
    expect((await commitments(remaining)).size).toBe(1);

    // and a last message reaches all 17 others
    const last: NostrEvent = await engines[19]!.sendMessage(gid, { kind: 9, content: "last" }, now++);
    for (const o of await deliver(remaining.filter((e) => e !== engines[19]), [last], now)) expect(o[0]).toMatchObject({ kind: "application", rumor: { content: "last" } });
  }, 90_000);
});
