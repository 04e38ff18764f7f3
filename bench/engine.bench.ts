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
 *            raw+kp: the same + generating one KeyPackage (the MIP-02 rotation is MLS work joinGroup does not do)
 *   commit   engine: processEvent(445 self-update commit) (verify, decrypt, authorization, apply, persist)
 *            raw:    MLSMessage decoding + processMessage
 *   message  engine: sendMessage + processEvent (rumor, 445 wrap/sign/verify/decrypt, author check, persist)
 *            raw:    createApplicationMessage + encode/decode + processMessage
 * Raw ts-mls runs twice: "raw" on ts-mls's default providers (getMarmotCiphersuite: WebCrypto hashes,
 * HKDF and Ed25519, as a rig written on ts-mls gets; the goals are judged against it), and "raw-e" on
 * the providers the engine gives ts-mls (getEngineCiphersuite: synchronous SHA-256/HKDF, OpenSSL Ed25519
 * with cached keys). engine ÷ raw-e is the cost of the Marmot layer alone (Nostr events, NIP-44/59,
 * the 445 envelope, validation, persistence) over the same MLS work on the same primitives.
 * Raw ts-mls works on the engine's own trees: every raw task starts from a copy of the engine's
 * current ts-mls state (mlsStateCopy, taken outside the timed body), so that both sides commit, join
 * and process on the same ratchet tree (separate raw groups drift: blanks left by removals change the
 * number of HPKE encryptions per commit).
 * At N >= 140 an inline ratchet tree no longer fits a NIP-44 Welcome; both sides then use a Welcome
 * without the tree and hand the tree over directly (engine: experimental outOfBandRatchetTree).
 * Every task runs in several rounds of a few iterations, engine and raw alternating first, and the
 * figure is the median over rounds of the round mean, so that both sides see the same machine load.
 * Two figures per task: wall time (tinybench) and process CPU time (user + system of all threads,
 * around the task body only). The CPU ratio is paired: the median over rounds of engine ÷ raw in the
 * same round (with its interquartile range), so that the machine's slow drifts cancel. On a shared machine wall time also measures the neighbours; CPU
 * time is the work done, and the goals are judged on its ratio.
 * Engines run as a client does: CSPRNG randomness (no seeded `randomBytes`, which derives every
 * HPKE key pair through RFC 9180 DeriveKeyPair and costs more than generating one).
 * Results: a table on stdout, reports/bench-engine.json and reports/bench-engine.md.
 */
import "../src/platform/install-base64.ts"; // first: before @scure/base loads
import { mkdir, writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { getPublicKey } from "nostr-tools/pure";
import { decrypt as nip44Decrypt, encrypt as nip44Encrypt, getConversationKey } from "nostr-tools/nip44";
import { conversationKey, ecdhBackend, nip44Base64Path } from "../src/engine/nip44-conversation.ts";
import { uint8ArrayBase64State } from "../src/platform/uint8array-base64.ts";
import { sha256 } from "@noble/hashes/sha2.js";
import { Bench } from "tinybench";
import {
  createApplicationMessage,
  createCommit,
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
  type CiphersuiteImpl,
  type ClientState,
  type KeyPackage,
  type MlsContext,
  type MlsFramedMessage,
  type MlsWelcomeMessage,
  type PrivateKeyPackage,
} from "ts-mls";
import { createEngine, mlsStateCopy } from "../src/engine/engine.ts";
import { nostrSigningBackend, signNostrEvent, verifyNostrSignature } from "../src/engine/nostr-signing.ts";
import type { NostrEvent } from "../src/engine/api.ts";
import { generateMarmotKeyPackage, getEngineCiphersuite, getMarmotCiphersuite, marmotAuthService } from "../src/engine/identity.ts";

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
  return createEngine({ secretKey: secret(), outOfBandRatchetTree: oob });
}

interface RawMember {
  pub: KeyPackage;
  priv: PrivateKeyPackage;
}
function rawPubkey(i: number): string {
  return Buffer.from(sha256(new TextEncoder().encode(`raw/${i}`))).toString("hex");
}
async function rawKp(i: number, cipherSuite: CiphersuiteImpl): Promise<RawMember> {
  const pubkey = rawPubkey(i);
  const { publicPackage, privatePackage } = await generateMarmotKeyPackage({ pubkey, now: clock, cipherSuite });
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
  /** Process CPU time (user + system, all threads) per operation, median over rounds: steadier than wall time on a loaded machine. */
  engineCpuMs: number;
  rawCpuMs: number;
  /** Median over rounds of engine CPU ÷ raw CPU in the same round. */
  cpuRatio: number;
  /** Interquartile range of those per-round ratios. */
  cpuRatioIqr: [number, number];
  /** Raw ts-mls on the engine's providers (getEngineCiphersuite): CPU per operation, and engine ÷ that (paired, IQR). */
  rawEngineSuiteCpuMs: number;
  cpuRatioSameSuite: number;
  cpuRatioSameSuiteIqr: [number, number];
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

const SIGN = "sign 445";
const VERIFY = "verify signature (BIP-340)";
const ECDH = "NIP-44 conversation key (ECDH)";
const ECDH_JS = "NIP-44 conversation key, nostr-tools (JS)";
const NIP44_SEAL = "NIP-44 encrypt, Welcome rumor + seal (nostr-tools)";
const NIP44_OPEN = "NIP-44 decrypt, wrap + seal (nostr-tools)";
/** This size's Welcome plaintexts (one invitee): the rumor JSON and the seal JSON, from a real add. */
let welcomePlaintexts: { rumor: string; seal: string } = { rumor: "", seal: "" };
let unit: Record<string, number> = {};
const unitBySize: Record<number, Record<string, number>> = {};
const plaintextBytesBySize: Record<number, string> = {};
/** Signatures (S), verifications (V) and NIP-44 conversation keys (E) per operation. */
const NOSTR_WORK: Record<string, { S: number; V: number; E: number }> = {
  message: { S: 1, V: 1, E: 0 },
  commit: { S: 0, V: 1, E: 0 },
  add: { S: 3, V: 1, E: 2 },
  join: { S: 1, V: 2, E: 2 },
};
function nostrFloor(op: string): number {
  const name = op.replace(/ .*/, "");
  const w = NOSTR_WORK[name] ?? { S: 0, V: 0, E: 0 };
  // MIP-02's two NIP-44 layers over the Welcome (nostr-tools' pure-JS ChaCha20 and HMAC-SHA256).
  const nip44 = name === "add" ? (unit[NIP44_SEAL] ?? 0) : name === "join" ? (unit[NIP44_OPEN] ?? 0) : 0;
  return w.S * (unit[SIGN] ?? 0) + w.V * (unit[VERIFY] ?? 0) + w.E * (unit[ECDH] ?? 0) + nip44;
}

async function benchSize(n: number): Promise<Row[]> {
  const oob = n >= OOB_FROM;
  const iterations = n >= 100 ? 3 : n >= 50 ? 4 : 6;
  const rounds = n >= 100 ? 5 : n >= 50 ? 9 : 15;
  const cs = await getMarmotCiphersuite();
  const csEngine = await getEngineCiphersuite();
  const ctx: MlsContext = {
    cipherSuite: cs,
    authService: marmotAuthService,
    clientConfig: {
      // as the engine configures ts-mls (5 past epochs retained)
      keyRetentionConfig: { ...defaultKeyRetentionConfig, retainKeysForEpochs: 5 },
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
  {
    // One real one-member add at this size, opened by its invitee, gives the Welcome's NIP-44 plaintexts.
    const jsk = secret();
    const j = await createEngine({ secretKey: jsk, outOfBandRatchetTree: oob });
    const p = await A.inviteMembers(gid, [await j.createKeyPackage({ relays: RELAYS, now: clock })], now());
    const c = await A.confirmCommit(p.id);
    const wrap = wrapFor(c.welcomes, j.pubkey);
    const seal = nip44Decrypt(wrap.content, getConversationKey(jsk, wrap.pubkey));
    const rumor = nip44Decrypt((JSON.parse(seal) as NostrEvent).content, getConversationKey(jsk, A.pubkey));
    welcomePlaintexts = { rumor, seal };
    const r = await A.removeMembers(gid, [j.pubkey], now());
    await A.confirmCommit(r.id);
    await B.processEvent(p.event, now());
    await B.processEvent(r.event, now());
  }
  const syncB = async (ev: NostrEvent) => {
    const o = await B.processEvent(ev, now());
    if (o[0]?.kind !== "commit") throw new Error(`B out of sync: ${o[0]?.kind}`);
  };

  // ---------------- raw ts-mls on the engine's own trees
  // Every raw task starts from an independent copy of the engine's current ts-mls state (A's, or B's
  // for processing), taken outside the timed body: both sides do their MLS work on the same ratchet
  // tree. (Separate raw groups drift apart from the engine's: blanks left by removals change the
  // resolution sizes and so the number of HPKE encryptions per commit, by up to 2x at 50 members.)
  const stateA = (): ClientState => mlsStateCopy(A, gid);
  const stateB = (): ClientState => mlsStateCopy(B, gid);
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
  // ---- message round trip
  add("engine message", async () => {
    const ev = await A.sendMessage(gid, { kind: 9, content: "benchmark message of ordinary length" }, now());
    const o = await B.processEvent(ev, clock);
    if (o[0]?.kind !== "application") throw new Error("message not read");
  });
  // ---- raw ts-mls, on its default providers ("raw", the goals' baseline) and on the engine's ("raw-e")
  const addRawTasks = (label: "raw" | "raw-e", suite: CiphersuiteImpl, seqBase: number): void => {
    const c: MlsContext = { ...ctx, cipherSuite: suite };
    let rawAdd: RawMember | undefined;
    let rawAddState: ClientState | undefined;
    add(
      `${label} add`,
      async () => {
        const r = await createCommit({ context: c, state: rawAddState!, extraProposals: [{ proposalType: defaultProposalTypes.add, add: { keyPackage: rawAdd!.pub } }], ratchetTreeExtension: !oob });
        encode(mlsMessageEncoder, r.commit);
        encode(mlsMessageEncoder, r.welcome!);
      },
      {
        beforeEach: async () => {
          rawAdd = await rawKp(seqBase + 4_000_000 + rawSeq++, suite);
          rawAddState = stateA();
        },
      },
    );
    // A Welcome for a raw joiner, made from A's current tree (what the engine joiner gets).
    const rawWelcome = async (joiner: RawMember): Promise<{ bytes: Uint8Array; tree: ClientState["ratchetTree"] }> => {
      const r = await createCommit({ context: c, state: stateA(), extraProposals: [{ proposalType: defaultProposalTypes.add, add: { keyPackage: joiner.pub } }], ratchetTreeExtension: !oob });
      return { bytes: encode(mlsMessageEncoder, r.welcome!), tree: r.newState.ratchetTree };
    };
    if (label === "raw") {
      let rawJoiner: RawMember | undefined;
      let rawJoinWelcome: { bytes: Uint8Array; tree: ClientState["ratchetTree"] } | undefined;
      add(
        "raw join",
        async () => {
          const w = decode(mlsMessageDecoder, rawJoinWelcome!.bytes) as MlsWelcomeMessage;
          await joinGroup({ context: c, welcome: w.welcome, keyPackage: rawJoiner!.pub, privateKeys: rawJoiner!.priv, ...(oob ? { ratchetTree: rawJoinWelcome!.tree } : {}) });
        },
        {
          beforeEach: async () => {
            rawJoiner = await rawKp(seqBase + 5_000_000 + rawSeq++, suite);
            rawJoinWelcome = await rawWelcome(rawJoiner);
          },
        },
      );
    }
    let rawJoinerKp: RawMember | undefined;
    let rawJoinWelcomeKp: { bytes: Uint8Array; tree: ClientState["ratchetTree"] } | undefined;
    add(
      `${label} join+kp`,
      async () => {
        const w = decode(mlsMessageDecoder, rawJoinWelcomeKp!.bytes) as MlsWelcomeMessage;
        await joinGroup({ context: c, welcome: w.welcome, keyPackage: rawJoinerKp!.pub, privateKeys: rawJoinerKp!.priv, ...(oob ? { ratchetTree: rawJoinWelcomeKp!.tree } : {}) });
        // the rotation's MLS work: one new KeyPackage (the same generator the engine uses, CSPRNG keys)
        await generateMarmotKeyPackage({ pubkey: rawPubkey(seqBase + 5_500_000 + rawSeq), now: clock, cipherSuite: suite });
      },
      {
        beforeEach: async () => {
          rawJoinerKp = await rawKp(seqBase + 6_000_000 + rawSeq++, suite);
          rawJoinWelcomeKp = await rawWelcome(rawJoinerKp);
        },
      },
    );
    let rawCommitBytes: Uint8Array | undefined;
    let rawReceiver: ClientState | undefined;
    add(
      `${label} commit`,
      async () => {
        const m = decode(mlsMessageDecoder, rawCommitBytes!) as MlsFramedMessage;
        await processMessage({ context: c, state: rawReceiver!, message: m });
      },
      {
        beforeEach: async () => {
          // A's self-update on A's tree, processed on a copy of B's state (what the engine commit task does).
          const r = await createCommit({ context: c, state: stateA(), extraProposals: [] });
          rawCommitBytes = encode(mlsMessageEncoder, r.commit);
          rawReceiver = stateB();
        },
      },
    );
    let rawSender: ClientState | undefined;
    let rawReader: ClientState | undefined;
    let rawMessageEpoch: bigint | undefined;
    add(
      `${label} message`,
      async () => {
        const rumor = JSON.stringify({ id: "0".repeat(64), pubkey: "1".repeat(64), created_at: clock, kind: 9, tags: [], content: "benchmark message of ordinary length" });
        const r = await createApplicationMessage({ context: c, state: rawSender!, message: new TextEncoder().encode(rumor) });
        rawSender = r.newState;
        const m = decode(mlsMessageDecoder, encode(mlsMessageEncoder, r.message)) as MlsFramedMessage;
        const res = await processMessage({ context: c, state: rawReader!, message: m });
        rawReader = res.newState;
        if (res.kind !== "applicationMessage") throw new Error("raw message not read");
      },
      {
        beforeEach: async () => {
          // Copied once per epoch and then advanced like the engine's own (the first message of an epoch
          // derives the sender's tree secrets on both sides; the next ones reuse them).
          const epoch = A.group(gid)!.epoch;
          if (rawMessageEpoch !== epoch) {
            rawSender = stateA();
            rawReader = stateB();
            rawMessageEpoch = epoch;
          }
        },
      },
    );
  };
  addRawTasks("raw", cs, 0);
  addRawTasks("raw-e", csEngine, 10_000_000);

  const roundMeans = new Map<string, number[]>();
  const cpuRoundMeans = new Map<string, number[]>();
  for (let round = 0; round < rounds; round++) {
    const bench = new Bench({ iterations, time: 0, warmup: false });
    addNostrUnitTasks(bench);
    // Tasks of one operation run next to each other, engine first in even rounds and last in odd ones.
    const byOp = new Map<string, TaskSpec[]>();
    for (const t of tasks) {
      const op = t[0].split(" ")[1]!.replace(/\+.*/, "");
      byOp.set(op, [...(byOp.get(op) ?? []), t]);
    }
    const order: TaskSpec[] = [];
    for (const group of byOp.values()) order.push(...(round % 2 === 0 ? group : [...group].reverse()));
    const cpu = new Map<string, { ms: number; n: number }>();
    for (const [name, fn, opts] of order) {
      bench.add(
        name,
        async () => {
          const c0 = cpuMs();
          await fn();
          const acc = cpu.get(name) ?? { ms: 0, n: 0 };
          cpu.set(name, { ms: acc.ms + cpuMs() - c0, n: acc.n + 1 });
        },
        opts,
      );
    }
    await bench.run();
    for (const t of bench.tasks) {
      const r = t.result as { state: string; latency?: { mean: number }; error?: unknown };
      if (r.state !== "completed" || !r.latency) throw new Error(`${t.name}: ${r.state} ${String(r.error)}`);
      roundMeans.set(t.name, [...(roundMeans.get(t.name) ?? []), r.latency.mean]);
      const c = cpu.get(t.name);
      if (c && c.n > 0) cpuRoundMeans.set(t.name, [...(cpuRoundMeans.get(t.name) ?? []), c.ms / c.n]);
    }
  }
  /** Median over rounds of the per-round mean latency. */
  const mean = (name: string, from = roundMeans): { ms: number; samples: number } => {
    const xs = [...(from.get(name) ?? [])].sort((a, b) => a - b);
    if (xs.length === 0) throw new Error(`no samples for ${name}`);
    const mid = Math.floor(xs.length / 2);
    const ms = xs.length % 2 ? (xs[mid] as number) : ((xs[mid - 1] as number) + (xs[mid] as number)) / 2;
    return { ms, samples: iterations * rounds };
  };
  unit = {};
  for (const name of [SIGN, VERIFY, ECDH, ECDH_JS, NIP44_SEAL, NIP44_OPEN]) unit[name] = mean(name).ms;
  unitBySize[n] = { ...unit };
  plaintextBytesBySize[n] = `${Buffer.byteLength(welcomePlaintexts.rumor)} / ${Buffer.byteLength(welcomePlaintexts.seal)}`;
  const rows: Row[] = [];
  // Paired by round (engine and raw ran next to each other): the median of the per-round CPU ratios,
  // with its interquartile range; slow drifts of the machine cancel within a round.
  const pairedRatio = (engineName: string, rawName: string): { median: number; iqr: [number, number] } => {
    const ecs = cpuRoundMeans.get(engineName) ?? [];
    const rcs = cpuRoundMeans.get(rawName) ?? [];
    const paired = ecs.map((x, i) => x / (rcs[i] ?? Number.NaN)).filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
    const q = (f: number): number => paired[Math.min(paired.length - 1, Math.max(0, Math.round(f * (paired.length - 1))))] ?? Number.NaN;
    return { median: q(0.5), iqr: [q(0.25), q(0.75)] };
  };
  for (const [op, goal] of [["add", 1.2], ["join", 1.2], ["join vs raw+kp", 1.2], ["commit", 1.2], ["message", 1.5]] as const) {
    const engineName = `engine ${op.split(" ")[0]}`;
    const rawName = op === "join vs raw+kp" ? "raw join+kp" : `raw ${op}`;
    // "join" alone has no engine-suite twin: the same-suite figure of a join is the one against join+kp.
    const rawEName = op === "join vs raw+kp" || op === "join" ? "raw-e join+kp" : `raw-e ${op}`;
    const e = mean(engineName);
    const r = mean(rawName);
    const floor = nostrFloor(op);
    const vsDefault = pairedRatio(engineName, rawName);
    const vsSameSuite = pairedRatio(engineName, rawEName);
    rows.push({
      size: n,
      op,
      engineMs: e.ms,
      rawMs: r.ms,
      ratio: e.ms / r.ms,
      nostrFloorMs: floor,
      ratioWithoutNostrCrypto: (e.ms - floor) / r.ms,
      goal,
      samples: e.samples,
      outOfBandTree: oob,
      engineCpuMs: mean(engineName, cpuRoundMeans).ms,
      rawCpuMs: mean(rawName, cpuRoundMeans).ms,
      cpuRatio: vsDefault.median,
      cpuRatioIqr: vsDefault.iqr,
      rawEngineSuiteCpuMs: mean(rawEName, cpuRoundMeans).ms,
      cpuRatioSameSuite: vsSameSuite.median,
      cpuRatioSameSuiteIqr: vsSameSuite.iqr,
    });
  }
  return rows;
}

/**
 * Unit costs of the secp256k1 work the engine must add to the MLS work (Nostr signatures, NIP-44
 * keys), through the engine's own signer (WASM libsecp256k1 once createEngine has loaded it, pure
 * JS with MARMOT_NO_WASM=1) and its NIP-44 conversation keys (OpenSSL ECDH, one-shot; pure JS with
 * MARMOT_NO_OPENSSL_ECDH=1), with nostr-tools' pure-JS conversation key for comparison.
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
    conversationKey(sk, other);
  });
  b.add(ECDH_JS, () => {
    getConversationKey(sk, other);
  });
  const ck = conversationKey(sk, other);
  const { rumor, seal } = welcomePlaintexts;
  const sealed = [nip44Encrypt(rumor, ck), nip44Encrypt(seal, ck)];
  b.add(NIP44_SEAL, () => {
    nip44Encrypt(rumor, ck);
    nip44Encrypt(seal, ck);
  });
  b.add(NIP44_OPEN, () => {
    for (const c of sealed) nip44Decrypt(c, ck);
  });
}


const loadavgAtStart = loadavg();
const all: Row[] = [];
for (const n of SIZES) {
  const rows = await benchSize(n);
  all.push(...rows);
  for (const r of rows) {
    console.log(
      `${String(r.size).padStart(4)}  ${r.op.padEnd(14)} engine ${r.engineMs.toFixed(2).padStart(8)} ms   raw ${r.rawMs.toFixed(2).padStart(8)} ms   wall ${r.ratio.toFixed(2)}x   CPU ${r.engineCpuMs.toFixed(2)}/${r.rawCpuMs.toFixed(2)} ms, paired ${r.cpuRatio.toFixed(2)}x (IQR ${r.cpuRatioIqr[0].toFixed(2)}–${r.cpuRatioIqr[1].toFixed(2)}; goal ≤${r.goal}x); same providers ${r.rawEngineSuiteCpuMs.toFixed(2)} ms, ${r.cpuRatioSameSuite.toFixed(2)}x${r.outOfBandTree ? "  [tree out of band]" : ""}`,
    );
  }
}

const md = [
  "| members | operation | engine CPU (ms) | raw ts-mls CPU (ms) | engine/raw CPU (median of per-round ratios; IQR) | goal | raw ts-mls on the engine's providers, CPU (ms) | engine/that (the Marmot layer; IQR) | engine wall (ms) | raw wall (ms) | engine/raw wall | Nostr crypto share (ms) |",
  "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ...all.map(
    (r) =>
      `| ${r.size}${r.outOfBandTree ? "*" : ""} | ${r.op} | ${r.engineCpuMs.toFixed(2)} | ${r.rawCpuMs.toFixed(2)} | ${r.cpuRatio.toFixed(2)}x (${r.cpuRatioIqr[0].toFixed(2)}–${r.cpuRatioIqr[1].toFixed(2)}) | ≤${r.goal}x${r.cpuRatio <= r.goal ? " (met)" : " (missed)"} | ${r.rawEngineSuiteCpuMs.toFixed(2)} | ${r.cpuRatioSameSuite.toFixed(2)}x (${r.cpuRatioSameSuiteIqr[0].toFixed(2)}–${r.cpuRatioSameSuiteIqr[1].toFixed(2)}) | ${r.engineMs.toFixed(2)} | ${r.rawMs.toFixed(2)} | ${r.ratio.toFixed(2)}x | ${r.nostrFloorMs.toFixed(2)} |`,
  ),
  "",
  all.some((r) => r.outOfBandTree) ? "\\* ratchet tree delivered out of band (an inline tree does not fit a NIP-44 Welcome at this size).\n" : "",
  `Unit costs (ms) of the secp256k1 work a Marmot client adds to MLS, measured in the same bench as each size (signer: ${nostrSigningBackend()}, ECDH: ${ecdhBackend()}, NIP-44 base64: ${nip44Base64Path()} [Uint8Array base64 ${uint8ArrayBase64State()}]):`,
  "",
  `| members | ${[SIGN, VERIFY, ECDH, ECDH_JS, NIP44_SEAL, NIP44_OPEN].join(" | ")} | Welcome rumor / seal (bytes) |`,
  "|---:|---:|---:|---:|---:|---:|---:|---:|",
  ...Object.entries(unitBySize).map(([n, u]) => `| ${n} | ${[SIGN, VERIFY, ECDH, ECDH_JS, NIP44_SEAL, NIP44_OPEN].map((k) => (u[k] ?? 0).toFixed(3)).join(" | ")} | ${plaintextBytesBySize[Number(n)] ?? ""} |`),
  "",
  "Per operation the engine adds: message = 1 signature + 1 verification; add = KeyPackage event verification + 3 signatures (seal, wrap, 445) + 2 conversation keys + the two NIP-44 encryptions of the Welcome; join = 2 verifications + 2 conversation keys + the two NIP-44 decryptions + a new KeyPackage and its signed 30443; commit = 1 verification. The Nostr crypto share column sums these unit costs. \"join vs raw+kp\" compares the same engine join with joinGroup + generating one KeyPackage (the MIP-02 rotation's MLS work).",
  "",
  `Load average (1, 5, 15 min) at start ${loadavgAtStart.map((x) => x.toFixed(1)).join(", ")}, at end ${loadavg().map((x) => x.toFixed(1)).join(", ")}.`,
].join("\n");
console.log(`\n${md}`);
await mkdir("reports", { recursive: true });
await writeFile(
  "reports/bench-engine.json",
  JSON.stringify({ node: process.version, sizes: SIZES, date: new Date().toISOString(), loadavg: loadavg(), loadavgAtStart, signer: nostrSigningBackend(), ecdh: ecdhBackend(), nip44Base64: nip44Base64Path(), uint8ArrayBase64: uint8ArrayBase64State(), nostrUnitCostsMs: unitBySize, rows: all }, null, 2) + "\n",
);
await writeFile("reports/bench-engine.md", `# Engine vs raw ts-mls\n\n${md}\n`);
