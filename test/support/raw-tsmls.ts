/**
 * Raw ts-mls set-up (no harness, no engine) shared by the raw-ts-mls reproduction tests and the
 * raw-ts-mls replica of the scenario benchmark: the Marmot MLS context, deterministic member
 * identities with their KeyPackages, and a Marmot group created with the R1 group extensions.
 */
import {
  createGroup,
  defaultKeyPackageEqualityConfig,
  defaultKeyRetentionConfig,
  defaultLifetimeConfig,
  defaultPaddingConfig,
  type ClientState,
  type KeyPackage,
  type MlsContext,
  type PrivateKeyPackage,
} from "ts-mls";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { generateMarmotKeyPackage, getMarmotCiphersuite, marmotAuthService } from "../../src/engine/identity.ts";
import { makeGroupDataExtension, makeRequiredCapabilities } from "../../src/engine/mip01-group-data.ts";

/** The Marmot ciphersuite and credential rules with ts-mls's default client configuration. */
export async function rawMlsContext(): Promise<MlsContext> {
  return {
    cipherSuite: await getMarmotCiphersuite(),
    authService: marmotAuthService,
    clientConfig: { keyRetentionConfig: defaultKeyRetentionConfig, lifetimeConfig: defaultLifetimeConfig, keyPackageEqualityConfig: defaultKeyPackageEqualityConfig, paddingConfig: defaultPaddingConfig },
  };
}

export interface RawKeyPackage {
  name: string;
  pub: KeyPackage;
  priv: PrivateKeyPackage;
}

/** Member identities derived from `${prefix}/${name}`; `now` (unix seconds) defaults to the wall clock, which ts-mls checks lifetimes against. */
export function rawIdentities(prefix: string): { pubkeyOf: (name: string) => string; kp: (name: string, now?: number) => Promise<RawKeyPackage> } {
  const pubkeyOf = (name: string): string => bytesToHex(sha256(new TextEncoder().encode(`${prefix}/${name}`)));
  const kp = async (name: string, now: number = Math.floor(Date.now() / 1000)): Promise<RawKeyPackage> => {
    const r = await generateMarmotKeyPackage({ pubkey: pubkeyOf(name), now });
    return { name, pub: r.publicPackage, priv: r.privatePackage };
  };
  return { pubkeyOf, kp };
}

/** A Marmot group (fixed group id and nostr group id) whose only admin is `adminPubkey`. */
export async function rawCreateGroup(ctx: MlsContext, adminPubkey: string, creator: RawKeyPackage): Promise<ClientState> {
  const groupData = { version: 2, nostrGroupId: new Uint8Array(32).fill(7), name: "g", description: "", adminPubkeys: [adminPubkey], relays: ["wss://r1"], imageHash: null, imageKey: null, imageNonce: null, imageUploadKey: null, disappearingMessageSecs: null };
  return createGroup({ context: ctx, groupId: new Uint8Array(32).fill(1), keyPackage: creator.pub, privateKeyPackage: creator.priv, extensions: [makeRequiredCapabilities({ profile: "R1" }), makeGroupDataExtension(groupData)] });
}
