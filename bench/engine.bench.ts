/**
 * Engine vs raw ts-mls, the same MLS work, one run (tinybench).
 *
 *   npm run bench:engine            sizes 2, 10, 50, 150
 *   npm run bench:engine:short      sizes 2, 10   (or BENCH_SIZES=2,10)
 *
 * Per group size N (members before the operation):
 *   add      engine: inviteMembers + confirmCommit (KeyPackage event checks, Add commit, Welcome rumor,
 *                    seal, size check, 445 wrap and signature, state persisted, gift wrap)
 *            raw:    createCommit with one Add (+ Welcome), MLSMessage encoding
 *   join     engine: processEvent(gift wrap) (unwrap, checks, joinGroup, group data checks, KeyPackage rotation)
 *            raw:    MLSMessage decoding + joinGroup
 *   commit   engine: processEvent(445 self-update commit) (verify, decrypt, authorization, apply, persist)
 *            raw:    MLSMessage decoding + processMessage
 *   message  engine: sendMessage + processEvent (rumor, 445 wrap/sign/verify/decrypt, author check, persist)
 *            raw:    createApplicationMessage + encode/decode + processMessage
 * At N >= 140 an inline ratchet tree no longer fits a NIP-44 Welcome; both sides then use a Welcome
 * without the tree and hand the tree over directly (engine: experimental outOfBandRatchetTree).
 * Every task runs in several rounds of a few iterations, engine and raw alternating first, and the
 * figure is the median over rounds of the round mean, so that both sides see the same machine load.
 * Results: a table on stdout, reports/bench-engine.json and reports/bench-engine.md.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { getPublicKey } from "nostr-tools/pure";
import { getConversationKey } from "nostr-tools/nip44";
import { sha256 } from "@noble/hashes/sha2.js";
import { Bench } from "tinybench";
import {
  createApplicationMessage,
  createCommit,
  createGroup,
  decode,
  defaultKeyPackageEqualityConfig,
  defaultKeyRetentionConfig,
  defaultLifetimeConfig,
  defaultPaddingConfig,
  defaultProposalTypes,
  encode,
  joinGroup,
  mlsMessageDecoder,
  mlsMessageEncoder,
  processMessage,
  type ClientState,
  type KeyPackage,
  type MlsContext,
  type MlsFramedMessage,
  type MlsWelcomeMessage,
  type PrivateKeyPackage,
} from "ts-mls";
import { createEngine } from "../src/engine/engine.ts";
import { nostrSigningBackend, signNostrEvent, verifyNostrSignature } from "../src/engine/nostr-signing.ts";
import type { NostrEvent } from "../src/engine/api.ts";
import { generateMarmotKeyPackage, getMarmotCiphersuite, marmotAuthService } from "../src/engine/identity.ts";
import { makeGroupDataExtension, makeRequiredCapabilities } from "../src/engine/mip01-group-data.ts";
import { createRng } from "../src/sim/random.ts";

type Eng = Awaited<ReturnType<typeof createEngine>>;

const SIZES = (process.env.BENCH_SIZES ?? "2,10,50,150").split(",").map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n >= 2);
const RELAYS = ["wss://relay.example.test"];
const OOB_FROM = 140;
let clock = Math.floor(Date.now() / 1000);
const now = (): number => ++clock;

let keyCounter = 0;
function secret(): Uint8Array {
  return sha256(new TextEncoder().encode(`bench-engine/${keyCounter++}`));
}
async function engine(oob = false): Promise<Eng> {
  const rng = createRng(`bench-engine/rng/${keyCounter}`);
  return createEngine({ secretKey: secret(), randomBytes: (n) => rng.bytes(n), outOfBandRatchetTree: oob });
}

interface RawMember {
  pub: KeyPackage;
  priv: PrivateKeyPackage;
}
async function rawKp(i: number): Promise<RawMember> {
  const pubkey = Buffer.from(sha256(new TextEncoder().encode(`raw/${i}`))).toString("hex");
  const { publicPackage, privatePackage } = await generateMarmotKeyPackage({ pubkey, now: clock });
  return { pub: publicPackage, priv: privatePackage };
}

function wrapFor(events: NostrEvent[], pubkey: string): NostrEvent {
  const w = events.find((e) => e.tags.some((t) => t[0] === "p" && t[1] === pubkey));
  if (!w) throw new Error("no gift wrap for joiner");
  return w;
}

interface Row {
  size: number;
  op: string;
  engineMs: number;
  rawMs: number;
  ratio: number;
  /** secp256k1 work (Nostr signatures, verifications, NIP-44 keys) the operation needs, from unit costs. */
  nostrFloorMs: number;
  /** (engine - nostrFloor) / raw: the engine's own overhead over ts-mls. */
  ratioWithoutNostrCrypto: number;
  goal: number;
  samples: number;
  outOfBandTree: boolean;
}

const SIGN = "sign 445";
const VERIFY = "verify signature (BIP-340)";
const ECDH = "NIP-44 conversation key (ECDH)";
let unit: Record<string, number> = {};
const unitBySize: Record<number, Record<string, number>> = {};
/** Signatures (S), verifications (V) and NIP-44 conversation keys (E) per operation. */
const NOSTR_WORK: Record<string, { S: number; V: number; E: number }> = {
  message: { S: 1, V: 1, E: 0 },
  commit: { S: 0, V: 1, E: 0 },
  add: { S: 3, V: 1, E: 2 },
  join: { S: 1, V: 2, E: 2 },
};
function nostrFloor(op: string): number {
  const w = NOSTR_WORK[op] ?? { S: 0, V: 0, E: 0 };
  return w.S * (unit[SIGN] ?? 0) + w.V * (unit[VERIFY] ?? 0) + w.E * (unit[ECDH] ?? 0);
}

async function benchSize(n: number): Promise<Row[]> {
  const oob = n >= OOB_FROM;
  const iterations = n >= 100 ? 2 : n >= 50 ? 3 : 6;
  const rounds = n >= 100 ? 3 : 5;
  const cs = await getMarmotCiphersuite();
  const ctx: MlsContext = {
    cipherSuite: cs,
    authService: marmotAuthService,
    clientConfig: {
      keyRetentionConfig: defaultKeyRetentionConfig,
      lifetimeConfig: defaultLifetimeConfig,
      keyPackageEqualityConfig: defaultKeyPackageEqualityConfig,
      paddingConfig: defaultPaddingConfig,
    },
  };

  // ---------------- engine group of n
  const A = await engine(oob);
  const B = await engine();
  const g = await A.createGroup({ name: "bench", relays: RELAYS, now: now() });
  const kps: NostrEvent[] = [await B.createKeyPackage({ relays: RELAYS, now: clock })];
  for (let i = 0; i < n - 2; i++) kps.push(await (await engine()).createKeyPackage({ relays: RELAYS, now: clock }));
  const p0 = await A.inviteMembers(g.groupId, kps, now());
  const c0 = await A.confirmCommit(p0.id);
  if (oob) await B.provideRatchetTree(c0.outOfBandTrees![B.pubkey]!, clock);
  const j0 = await B.processEvent(wrapFor(c0.welcomes, B.pubkey), now());
  if (j0[0]?.kind !== "welcome") throw new Error(`B did not join: ${JSON.stringify(j0[0])}`);
  const gid = g.groupId;
  const syncB = async (ev: NostrEvent) => {
    const o = await B.processEvent(ev, now());
    if (o[0]?.kind !== "commit") throw new Error(`B out of sync: ${o[0]?.kind}`);
  };

  // ---------------- raw group of n
  const rawA0 = await rawKp(1_000_000 + n);
  const groupData = {
    version: 2,
    nostrGroupId: new Uint8Array(32).fill(7),
    name: "bench",
    description: "",
    adminPubkeys: [Buffer.from(rawA0.pub.leafNode.credential.credentialType === 1 ? (rawA0.pub.leafNode.credential as { identity: Uint8Array }).identity : new Uint8Array(32)).toString("hex")],
    relays: RELAYS,
    imageHash: null,
    imageKey: null,
    imageNonce: null,
    imageUploadKey: null,
    disappearingMessageSecs: null,
  };
  let rawA: ClientState = await createGroup({
    context: ctx,
    groupId: new Uint8Array(32).fill(n),
    keyPackage: rawA0.pub,
    privateKeyPackage: rawA0.priv,
    extensions: [makeRequiredCapabilities({ profile: "R1" }), makeGroupDataExtension(groupData)],
  });
  const rawBm = await rawKp(2_000_000 + n);
  const fill: RawMember[] = [rawBm];
  for (let i = 0; i < n - 2; i++) fill.push(await rawKp(3_000_000 + n * 1000 + i));
  const rc0 = await createCommit({
    context: ctx,
    state: rawA,
    extraProposals: fill.map((m) => ({ proposalType: defaultProposalTypes.add, add: { keyPackage: m.pub } })),
    ratchetTreeExtension: !oob,
  });
  rawA = rc0.newState;
  let rawB: ClientState = await joinGroup({
    context: ctx,
    welcome: rc0.welcome!.welcome,
    keyPackage: rawBm.pub,
    privateKeys: rawBm.priv,
    ...(oob ? { ratchetTree: rawA.ratchetTree } : {}),
  });
  const rawProcess = async (bytes: Uint8Array) => {
    const m = decode(mlsMessageDecoder, bytes) as MlsFramedMessage;
    const r = await processMessage({ context: ctx, state: rawB, message: m });
    rawB = r.newState;
    return r;
  };
  const leafOf = (state: ClientState, pub: KeyPackage): number => {
    for (let i = 0; i < state.ratchetTree.length; i += 2) {
      const node = state.ratchetTree[i];
      if (node && node.nodeType === 1 && Buffer.from(node.leaf.signaturePublicKey).equals(Buffer.from(pub.leafNode.signaturePublicKey))) return i / 2;
    }
    throw new Error("leaf not found");
  };
  const rawRemove = async (pub: KeyPackage) => {
    const r = await createCommit({ context: ctx, state: rawA, extraProposals: [{ proposalType: defaultProposalTypes.remove, remove: { removed: leafOf(rawA, pub) } }] });
    rawA = r.newState;
    await rawProcess(encode(mlsMessageEncoder, r.commit));
  };
  let rawSeq = 0;

  // Tasks are registered once and run in several rounds; each round runs every task a few
  // iterations, alternating engine-first and raw-first, so that both sides see the same machine load.
  type TaskSpec = [string, () => Promise<void> | void, { beforeEach?: () => Promise<void>; afterEach?: () => Promise<void> }?];
  const tasks: TaskSpec[] = [];
  const add = (...t: TaskSpec): void => {
    tasks.push(t);
  };

  // ---- add
  let addKp: NostrEvent | undefined;
  let addPub = "";
  let addEvents: NostrEvent[] = [];
  add(
    "engine add",
    async () => {
      const p = await A.inviteMembers(gid, [addKp!], now());
      await A.confirmCommit(p.id);
      addEvents = [p.event];
    },
    {
      beforeEach: async () => {
        const j = await engine();
        addKp = await j.createKeyPackage({ relays: RELAYS, now: clock });
        addPub = j.pubkey;
      },
      afterEach: async () => {
        const r = await A.removeMembers(gid, [addPub], now());
        await A.confirmCommit(r.id);
        for (const ev of [...addEvents, r.event]) await syncB(ev);
      },
    },
  );
  let rawAdd: RawMember | undefined;
  let rawAddCommit: MlsFramedMessage | undefined;
  add(
    "raw add",
    async () => {
      const r = await createCommit({ context: ctx, state: rawA, extraProposals: [{ proposalType: defaultProposalTypes.add, add: { keyPackage: rawAdd!.pub } }], ratchetTreeExtension: !oob });
      encode(mlsMessageEncoder, r.commit);
      encode(mlsMessageEncoder, r.welcome!);
      rawA = r.newState;
      rawAddCommit = r.commit;
    },
    {
      beforeEach: async () => {
        rawAdd = await rawKp(4_000_000 + rawSeq++);
      },
      afterEach: async () => {
        await rawProcess(encode(mlsMessageEncoder, rawAddCommit!));
        await rawRemove(rawAdd!.pub);
      },
    },
  );

  // ---- join
  let joiner: Eng | undefined;
  let joinWrap: NostrEvent | undefined;
  let joinTree: Uint8Array | undefined;
  add(
    "engine join",
    async () => {
      if (joinTree) await joiner!.provideRatchetTree(joinTree, clock);
      const o = await joiner!.processEvent(joinWrap!, now());
      if (o.at(-1)?.kind !== "welcome") throw new Error(`join failed: ${JSON.stringify(o)}`);
    },
    {
      beforeEach: async () => {
        joiner = await engine();
        const kp = await joiner.createKeyPackage({ relays: RELAYS, now: clock });
        const p = await A.inviteMembers(gid, [kp], now());
        const c = await A.confirmCommit(p.id);
        await syncB(p.event);
        joinWrap = wrapFor(c.welcomes, joiner.pubkey);
        joinTree = c.outOfBandTrees?.[joiner.pubkey];
      },
      afterEach: async () => {
        const r = await A.removeMembers(gid, [joiner!.pubkey], now());
        await A.confirmCommit(r.id);
        await syncB(r.event);
      },
    },
  );
  let rawJoiner: RawMember | undefined;
  let rawWelcomeBytes: Uint8Array | undefined;
  add(
    "raw join",
    async () => {
      const w = decode(mlsMessageDecoder, rawWelcomeBytes!) as MlsWelcomeMessage;
      await joinGroup({ context: ctx, welcome: w.welcome, keyPackage: rawJoiner!.pub, privateKeys: rawJoiner!.priv, ...(oob ? { ratchetTree: rawA.ratchetTree } : {}) });
    },
    {
      beforeEach: async () => {
        rawJoiner = await rawKp(5_000_000 + rawSeq++);
        const r = await createCommit({ context: ctx, state: rawA, extraProposals: [{ proposalType: defaultProposalTypes.add, add: { keyPackage: rawJoiner.pub } }], ratchetTreeExtension: !oob });
        rawA = r.newState;
        rawWelcomeBytes = encode(mlsMessageEncoder, r.welcome!);
        await rawProcess(encode(mlsMessageEncoder, r.commit));
      },
      afterEach: async () => rawRemove(rawJoiner!.pub),
    },
  );

  // ---- process a commit
  let commitEv: NostrEvent | undefined;
  add(
    "engine commit",
    async () => {
      const o = await B.processEvent(commitEv!, now());
      if (o[0]?.kind !== "commit") throw new Error(`commit not applied: ${JSON.stringify(o[0])}`);
    },
    {
      beforeEach: async () => {
        const p = await A.selfUpdate(gid, now());
        await A.confirmCommit(p.id);
        commitEv = p.event;
      },
    },
  );
  let rawCommitBytes: Uint8Array | undefined;
  add(
    "raw commit",
    async () => {
      await rawProcess(rawCommitBytes!);
    },
    {
      beforeEach: async () => {
        const r = await createCommit({ context: ctx, state: rawA, extraProposals: [] });
        rawA = r.newState;
        rawCommitBytes = encode(mlsMessageEncoder, r.commit);
      },
    },
  );

  // ---- message round trip
  add("engine message", async () => {
    const ev = await A.sendMessage(gid, { kind: 9, content: "benchmark message of ordinary length" }, now());
    const o = await B.processEvent(ev, clock);
    if (o[0]?.kind !== "application") throw new Error("message not read");
  });
  add("raw message", async () => {
    const rumor = JSON.stringify({ id: "0".repeat(64), pubkey: "1".repeat(64), created_at: clock, kind: 9, tags: [], content: "benchmark message of ordinary length" });
    const r = await createApplicationMessage({ context: ctx, state: rawA, message: new TextEncoder().encode(rumor) });
    rawA = r.newState;
    const res = await rawProcess(encode(mlsMessageEncoder, r.message));
    if (res.kind !== "applicationMessage") throw new Error("raw message not read");
  });

  const roundMeans = new Map<string, number[]>();
  for (let round = 0; round < rounds; round++) {
    const bench = new Bench({ iterations, time: 0, warmup: false });
    addNostrUnitTasks(bench);
    const order: TaskSpec[] = [];
    for (let i = 0; i < tasks.length; i += 2) {
      const pair = tasks.slice(i, i + 2);
      order.push(...(round % 2 === 0 ? pair : pair.reverse()));
    }
    for (const [name, fn, opts] of order) bench.add(name, fn, opts);
    await bench.run();
    for (const t of bench.tasks) {
      const r = t.result as { state: string; latency?: { mean: number }; error?: unknown };
      if (r.state !== "completed" || !r.latency) throw new Error(`${t.name}: ${r.state} ${String(r.error)}`);
      roundMeans.set(t.name, [...(roundMeans.get(t.name) ?? []), r.latency.mean]);
    }
  }
  /** Median over rounds of the per-round mean latency. */
  const mean = (name: string): { ms: number; samples: number } => {
    const xs = [...(roundMeans.get(name) ?? [])].sort((a, b) => a - b);
    if (xs.length === 0) throw new Error(`no samples for ${name}`);
    const mid = Math.floor(xs.length / 2);
    const ms = xs.length % 2 ? (xs[mid] as number) : ((xs[mid - 1] as number) + (xs[mid] as number)) / 2;
    return { ms, samples: iterations * rounds };
  };
  unit = {};
  for (const name of [SIGN, VERIFY, ECDH]) unit[name] = mean(name).ms;
  unitBySize[n] = { ...unit };
  const rows: Row[] = [];
  for (const [op, goal] of [["add", 1.2], ["join", 1.2], ["commit", 1.2], ["message", 1.5]] as const) {
    const e = mean(`engine ${op}`);
    const r = mean(`raw ${op}`);
    const floor = nostrFloor(op);
    rows.push({ size: n, op, engineMs: e.ms, rawMs: r.ms, ratio: e.ms / r.ms, nostrFloorMs: floor, ratioWithoutNostrCrypto: (e.ms - floor) / r.ms, goal, samples: e.samples, outOfBandTree: oob });
  }
  return rows;
}

/**
 * Unit costs of the secp256k1 work the engine must add to the MLS work (Nostr signatures, NIP-44
 * keys), through the engine's own signer (WASM libsecp256k1 once createEngine has loaded it, pure
 * JS with MARMOT_NO_WASM=1). NIP-44 conversation keys are always pure JS.
 */
function addNostrUnitTasks(b: Bench): void {
  const sk = secret();
  const other = getPublicKey(secret());
  const ev = signNostrEvent({ kind: 445, created_at: 1, tags: [["h", "0".repeat(64)]], content: "x".repeat(400) }, sk);
  b.add(SIGN, () => {
    signNostrEvent({ kind: 445, created_at: 1, tags: [], content: "x" }, sk);
  });
  b.add(VERIFY, () => {
    verifyNostrSignature(ev);
  });
  b.add(ECDH, () => {
    getConversationKey(sk, other);
  });
}


const all: Row[] = [];
for (const n of SIZES) {
  const rows = await benchSize(n);
  all.push(...rows);
  for (const r of rows) {
    console.log(
      `${String(r.size).padStart(4)}  ${r.op.padEnd(8)} engine ${r.engineMs.toFixed(2).padStart(8)} ms   raw ${r.rawMs.toFixed(2).padStart(8)} ms   ratio ${r.ratio.toFixed(2)}x (goal ≤${r.goal}x)   without Nostr crypto ${r.ratioWithoutNostrCrypto.toFixed(2)}x${r.outOfBandTree ? "  [tree out of band]" : ""}`,
    );
  }
}

const md = [
  "| members | operation | engine (ms) | raw ts-mls (ms) | engine/raw | goal | Nostr secp256k1 share (ms) | (engine − Nostr)/raw |",
  "|---:|---|---:|---:|---:|---:|---:|---:|",
  ...all.map(
    (r) =>
      `| ${r.size}${r.outOfBandTree ? "*" : ""} | ${r.op} | ${r.engineMs.toFixed(2)} | ${r.rawMs.toFixed(2)} | ${r.ratio.toFixed(2)}x | ≤${r.goal}x${r.ratio <= r.goal ? "" : " (missed)"} | ${r.nostrFloorMs.toFixed(2)} | ${r.ratioWithoutNostrCrypto.toFixed(2)}x |`,
  ),
  "",
  all.some((r) => r.outOfBandTree) ? "\\* ratchet tree delivered out of band (an inline tree does not fit a NIP-44 Welcome at this size).\n" : "",
  `Unit costs of the secp256k1 work a Marmot client adds to MLS, measured in the same bench as each size (signer: ${nostrSigningBackend()}):`,
  "",
  `| members | ${[SIGN, VERIFY, ECDH].join(" | ")} |`,
  "|---:|---:|---:|---:|",
  ...Object.entries(unitBySize).map(([n, u]) => `| ${n} | ${[SIGN, VERIFY, ECDH].map((k) => (u[k] ?? 0).toFixed(3)).join(" | ")} |`),
  "",
  "Per operation the engine adds: message = 1 signature + 1 verification; add = KeyPackage event verification + 3 signatures (seal, wrap, 445) + 2 conversation keys; join = 2 verifications + 2 conversation keys + a new KeyPackage and its signed 30443; commit = 1 verification.",
].join("\n");
console.log(`\n${md}`);
await mkdir("reports", { recursive: true });
await writeFile(
  "reports/bench-engine.json",
  JSON.stringify({ node: process.version, sizes: SIZES, date: new Date().toISOString(), loadavg: loadavg(), signer: nostrSigningBackend(), nostrUnitCostsMs: unitBySize, rows: all }, null, 2) + "\n",
);
await writeFile("reports/bench-engine.md", `# Engine vs raw ts-mls\n\n${md}\n`);
