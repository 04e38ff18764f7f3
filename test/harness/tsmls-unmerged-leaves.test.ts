/**
 * Minimal reproduction, in raw ts-mls (no harness, no engine), of a ts-mls 2.0.0-rc.10 bug the harness
 * found: re-adding removed members into their blank leaves produces a Welcome that the joiners refuse
 * with "non-blank intermediate node must list leaf node in its unmerged_leaves".
 *
 * Shape: a creator adds 1, then 4, then 4 members (leaves 1, 2–5, 6–9); removes leaves 3–5 in one
 * commit; re-adds the same three people (fresh KeyPackages) in one commit: every join fails.
 *
 * This test asserts that the bug is PRESENT. When ts-mls fixes it, the joins succeed and this test
 * turns red: then delete it, expect `bug-tsmls-readd-unmerged-leaves` to pass, and drop the
 * "expected to fail" of epoch-churn-150.
 */
import { describe, expect, it } from "vitest";
import {
  createCommit,
  defaultProposalTypes,
  joinGroup,
  processMessage,
  type ClientState,
  type MlsFramedMessage,
} from "ts-mls";
import { rawCreateGroup, rawIdentities, rawMlsContext } from "../support/raw-tsmls.ts";

/** ts-mls checks KeyPackage lifetimes against the wall clock. */
const NOW = Math.floor(Date.now() / 1000);

describe("ts-mls 2.0.0-rc.10: Welcome after re-adding removed members (bug present)", () => {
  it("joiners refuse the Welcome: non-blank intermediate node must list leaf node in its unmerged_leaves", async () => {
    const ctx = await rawMlsContext();
    const ids = rawIdentities("unmerged");
    const kp = (name: string): ReturnType<typeof ids.kp> => ids.kp(name, NOW);
    const creator = await kp("m0");
    let admin: ClientState = await rawCreateGroup(ctx, ids.pubkeyOf("m0"), creator);
    const members = new Map<string, ClientState>();
    const fanOut = async (msg: MlsFramedMessage): Promise<void> => {
      for (const [n, st] of members) members.set(n, (await processMessage({ context: ctx, state: st, message: msg })).newState);
    };
    /** One commit adding these names; returns, per name, the join's error message (undefined: joined). */
    const add = async (names: string[]): Promise<Record<string, string | undefined>> => {
      const kps = await Promise.all(names.map(kp));
      const r = await createCommit({ context: ctx, state: admin, extraProposals: kps.map((k) => ({ proposalType: defaultProposalTypes.add, add: { keyPackage: k.pub } })), ratchetTreeExtension: true });
      admin = r.newState;
      await fanOut(r.commit as MlsFramedMessage);
      const out: Record<string, string | undefined> = {};
      for (const k of kps) {
        try {
          members.set(k.name, await joinGroup({ context: ctx, welcome: r.welcome!.welcome, keyPackage: k.pub, privateKeys: k.priv }));
          out[k.name] = undefined;
        } catch (e) {
          out[k.name] = (e as Error).message;
        }
      }
      return out;
    };

    // leaves: m0 = 0, m1 = 1, m2..m5 = 2..5, m6..m9 = 6..9; every one of these joins works
    expect(Object.values(await add(["m1"]))).toEqual([undefined]);
    expect(Object.values(await add(["m2", "m3", "m4", "m5"]))).toEqual([undefined, undefined, undefined, undefined]);
    expect(Object.values(await add(["m6", "m7", "m8", "m9"]))).toEqual([undefined, undefined, undefined, undefined]);

    // remove leaves 3–5 in one commit
    const removed = ["m3", "m4", "m5"];
    const r = await createCommit({ context: ctx, state: admin, extraProposals: [3, 4, 5].map((leaf) => ({ proposalType: defaultProposalTypes.remove, remove: { removed: leaf } })) });
    admin = r.newState;
    for (const n of removed) members.delete(n);
    await fanOut(r.commit as MlsFramedMessage);

    // re-add the same three people in one commit: the bug makes every join fail
    const readd = await add(removed);
    // BUG PRESENT in ts-mls 2.0.0-rc.10. When this expectation fails, ts-mls fixed it (see the header).
    for (const n of removed) expect(readd[n], `${n}'s join`).toMatch(/non-blank intermediate node must list leaf node in its unmerged_leaves/);
  }, 30_000);
});
