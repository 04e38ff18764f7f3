/**
 * Marmot identity on MLS: ciphersuite 0x0001, BasicCredential whose identity is the raw 32-byte
 * x-only Nostr pubkey, leaf capabilities as MDK 0.8 advertises them (with RFC 9420 §13.5 GREASE),
 * KeyPackage generation (last_resort by default) and the authentication service that only admits
 * such credentials.
 *
 * Pure: no clock and no I/O. Randomness comes from the CSPRNG unless the caller passes
 * `randomBytes` (then every key and every GREASE draw is derived from it, for reproducible runs).
 */
import {
  defaultCredentialTypes,
  generateKeyPackageWithKey,
  getCiphersuiteImpl,
  greaseValues,
  makeCustomExtension,
  protocolVersions,
  type AuthenticationService,
  type Capabilities,
  type CiphersuiteImpl,
  type Credential,
  type CustomExtension,
  type KeyPackage,
  type Lifetime,
  type PrivateKeyPackage,
} from "ts-mls";
import { ed25519 } from "@noble/curves/ed25519.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { HarnessError } from "../errors.ts";
import { engineCiphersuite } from "./sync-primitives.ts";

/** MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, the only Marmot ciphersuite (R0/R1). */
export const MARMOT_CIPHERSUITE = 1 as const;
export const MARMOT_CIPHERSUITE_NAME = "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519" as const;

/** Extension and proposal code points used by Marmot (R0/R1). */
export const EXT_LAST_RESORT = 0x000a;
export const EXT_MARMOT_GROUP_DATA = 0xf2ee;
export const PROPOSAL_SELF_REMOVE = 0x000a;
/** RFC 9420 default extension types 0x0001..0x0005: never listed in capabilities nor in tags. */
export const DEFAULT_EXTENSION_TYPES: readonly number[] = [0x0001, 0x0002, 0x0003, 0x0004, 0x0005];

/** RFC 9420 §13.5 GREASE values (0x0A0A, 0x1A1A, ... 0xEAEA). */
export const GREASE_VALUES: readonly number[] = Object.freeze([...greaseValues]);
const GREASE_SET = new Set<number>(GREASE_VALUES);

export function isGrease(n: number): boolean {
  return GREASE_SET.has(n);
}

/** Identity-level failure: a credential that is not a Marmot BasicCredential, a bad pubkey. */
export class IdentityError extends HarnessError {}

let ciphersuitePromise: Promise<CiphersuiteImpl> | undefined;

/**
 * ts-mls's own implementation of ciphersuite 0x0001 (its default providers; created once, then
 * shared): the reference the engine's provider is tested against, and raw ts-mls in the benchmark.
 */
export function getMarmotCiphersuite(): Promise<CiphersuiteImpl> {
  if (ciphersuitePromise === undefined) {
    ciphersuitePromise = getCiphersuiteImpl(MARMOT_CIPHERSUITE_NAME);
    // A failed initialisation must not poison every later call.
    ciphersuitePromise.catch(() => {
      ciphersuitePromise = undefined;
    });
  }
  return ciphersuitePromise;
}

let engineSuitePromise: Promise<CiphersuiteImpl> | undefined;

/**
 * The suite the engine runs ts-mls on: ciphersuite 0x0001 with synchronous SHA-256/HMAC/HKDF, OpenSSL
 * Ed25519 with cached key objects and OpenSSL AES-128-GCM for the MLS AEAD (src/engine/sync-primitives.ts),
 * byte-equal to the default.
 */
export function getEngineCiphersuite(): Promise<CiphersuiteImpl> {
  if (engineSuitePromise === undefined) {
    engineSuitePromise = getMarmotCiphersuite().then(engineCiphersuite);
    engineSuitePromise.catch(() => {
      engineSuitePromise = undefined;
    });
  }
  return engineSuitePromise;
}

const HEX64 = /^[0-9a-fA-F]{64}$/;

/** Raw 32 bytes of an x-only Nostr pubkey given as 64 hex characters. */
export function pubkeyBytes(pubkeyHex: string): Uint8Array {
  if (typeof pubkeyHex !== "string" || !HEX64.test(pubkeyHex)) {
    throw new IdentityError("ID_BAD_PUBKEY", "a Nostr pubkey must be 64 hex characters", { pubkey: pubkeyHex });
  }
  return hexToBytes(pubkeyHex.toLowerCase());
}

/** BasicCredential whose identity is the raw 32-byte x-only pubkey (not hex, not npub). */
export function makeCredential(pubkeyHex: string): Credential {
  return { credentialType: defaultCredentialTypes.basic, identity: pubkeyBytes(pubkeyHex) };
}

/** The Nostr pubkey (lowercase hex) of a Marmot credential; typed error for anything else. */
export function identityOfCredential(c: Credential): string {
  if (c.credentialType !== defaultCredentialTypes.basic || !("identity" in c)) {
    throw new IdentityError("ID_NOT_BASIC_CREDENTIAL", `credential type ${c.credentialType} is not BasicCredential (1)`, {
      credentialType: c.credentialType,
    });
  }
  const identity = c.identity;
  if (!(identity instanceof Uint8Array) || identity.length !== 32) {
    throw new IdentityError("ID_BAD_IDENTITY_LENGTH", `BasicCredential identity must be 32 raw bytes, got ${identity?.length ?? 0}`, {
      length: identity?.length ?? 0,
    });
  }
  return bytesToHex(identity);
}

/** Byte source; defaults to the CSPRNG. */
export type RandomBytes = (n: number) => Uint8Array;

const cryptoRandomBytes: RandomBytes = (n) => crypto.getRandomValues(new Uint8Array(n));

/**
 * GREASE draw: each GREASE value is included with probability 1/10 (as ts-mls and OpenMLS do), and
 * at least one value is always included so that receivers that choke on unknown values are caught.
 */
function drawGrease(randomBytes: RandomBytes): number[] {
  const draw = randomBytes(GREASE_VALUES.length + 1);
  const out = GREASE_VALUES.filter((_, i) => (draw[i] ?? 0) < 26);
  if (out.length === 0) out.push(GREASE_VALUES[(draw[GREASE_VALUES.length] ?? 0) % GREASE_VALUES.length]!);
  return out;
}

export interface CapabilitiesOptions {
  /** Add GREASE values to ciphersuites, extensions, proposals and credentials (default true, as MDK). */
  grease?: boolean;
  randomBytes?: RandomBytes;
}

/**
 * Leaf capabilities as MDK 0.8 advertises them: version mls10, ciphersuite 0x0001, extensions
 * [last_resort 0x000a, marmot_group_data 0xf2ee], proposals [self_remove 0x000a], credentials [basic],
 * plus GREASE values when asked (default on).
 */
export function marmotCapabilities(opts: CapabilitiesOptions = {}): Capabilities {
  const grease = opts.grease ?? true;
  const rb = opts.randomBytes ?? cryptoRandomBytes;
  const g = (): number[] => (grease ? drawGrease(rb) : []);
  return {
    versions: [protocolVersions.mls10],
    ciphersuites: [MARMOT_CIPHERSUITE, ...g()],
    extensions: [EXT_LAST_RESORT, EXT_MARMOT_GROUP_DATA, ...g()],
    proposals: [PROPOSAL_SELF_REMOVE, ...g()],
    credentials: [defaultCredentialTypes.basic, ...g()],
  };
}

/** The KeyPackage-level last_resort extension (0x000a, empty data). */
export function lastResortExtension(): CustomExtension {
  return makeCustomExtension({ extensionType: EXT_LAST_RESORT, extensionData: new Uint8Array(0) });
}

export function isLastResortKeyPackage(kp: KeyPackage): boolean {
  return kp.extensions.some((e) => e.extensionType === EXT_LAST_RESORT);
}

export interface GenerateKeyPackageOptions {
  /** Account pubkey, 64 hex. */
  pubkey: string;
  /** Mark the KeyPackage last_resort (default true: MDK 0.8 marks every KeyPackage last_resort). */
  lastResort?: boolean;
  /** GREASE in the leaf capabilities (default true). */
  grease?: boolean;
  /** When given, the signature key, init key, HPKE key and GREASE draws all come from it. */
  randomBytes?: RandomBytes;
  /** Unix seconds used for the leaf Lifetime (default: wall clock, as ts-mls). */
  now?: number;
  /** Lifetime override. Default: notBefore = now - 1 day, notAfter = now + 90 days (MDK: 3 months). */
  lifetime?: Lifetime;
  /** The ts-mls suite that makes the keys and signatures (default: the engine's, `getEngineCiphersuite()`). */
  cipherSuite?: CiphersuiteImpl;
}

/** 90 days, the KeyPackage lifetime MDK uses. */
export const KEY_PACKAGE_LIFETIME_SECS = 90 * 86_400;

export async function generateMarmotKeyPackage(
  opts: GenerateKeyPackageOptions,
): Promise<{ publicPackage: KeyPackage; privatePackage: PrivateKeyPackage }> {
  const credential = makeCredential(opts.pubkey);
  const cs = opts.cipherSuite ?? (await getEngineCiphersuite());
  const rb = opts.randomBytes;
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  const lifetime: Lifetime = opts.lifetime ?? {
    notBefore: BigInt(Math.max(0, now - 86_400)),
    notAfter: BigInt(now + KEY_PACKAGE_LIFETIME_SECS),
  };
  const capabilities = marmotCapabilities({ grease: opts.grease ?? true, randomBytes: rb });
  const extensions = (opts.lastResort ?? true) ? [lastResortExtension()] : [];

  let signatureKeyPair: { signKey: Uint8Array; publicKey: Uint8Array };
  let suite: CiphersuiteImpl = cs;
  if (rb !== undefined) {
    const seed = rb(32);
    signatureKeyPair = { signKey: seed, publicKey: ed25519.getPublicKey(seed) };
    // Derive the init and HPKE key pairs from the caller's bytes instead of the CSPRNG.
    suite = { ...cs, hpke: { ...cs.hpke, generateKeyPair: () => cs.hpke.deriveKeyPair(rb(32)) } };
  } else {
    signatureKeyPair = await cs.signature.keygen();
  }
  return generateKeyPackageWithKey({ credential, capabilities, lifetime, extensions, signatureKeyPair, cipherSuite: suite });
}

/**
 * Authentication service for ts-mls: accepts only BasicCredentials whose identity is 32 bytes
 * (a Nostr x-only pubkey). The binding of that identity to the event author is checked by the
 * MIP-00 parser and the engine, not here (the signature key is per-leaf and not the Nostr key).
 */
export const marmotAuthService: AuthenticationService = {
  async validateCredential(credential: Credential, _signaturePublicKey: Uint8Array): Promise<boolean> {
    try {
      identityOfCredential(credential);
      return true;
    } catch {
      return false;
    }
  },
};
