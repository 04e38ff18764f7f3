/**
 * The rule catalogue: one entry per checkable rule of the protocol digest §9, with the digest's ids.
 * Descriptions are one line each, in this project's own words. Whether a check exists for a rule
 * is recorded in `implemented` (set by the checks module, see checks-registry.ts).
 */
import type { ProtocolProfile } from "../../profile.ts";

export type RuleLevel = "MUST" | "MUST NOT" | "SHOULD";
export type RuleInput = "event" | "rumor" | "event+state" | "sequence" | "bytes";

export interface Rule {
  id: string;
  level: RuleLevel;
  profiles: ProtocolProfile[];
  input: RuleInput;
  description: string;
  /** Digest section the rule comes from. */
  section: string;
}

const ALL: ProtocolProfile[] = ["R0", "R1", "R2"];
const R0: ProtocolProfile[] = ["R0"];
const R1: ProtocolProfile[] = ["R1"];
const R2: ProtocolProfile[] = ["R2"];
const R01: ProtocolProfile[] = ["R0", "R1"];
const R12: ProtocolProfile[] = ["R1", "R2"];

function r(id: string, level: RuleLevel, profiles: ProtocolProfile[], input: RuleInput, section: string, description: string): Rule {
  return { id, level, profiles, input, section, description };
}

export const RULES: readonly Rule[] = Object.freeze([
  // KeyPackage (MIP-00)
  r("MIP00-KP-01", "MUST", R1, "event", "§1.2", "New KeyPackages use addressable kind 30443; a fresh kind 443 is a legacy publication"),
  r("MIP00-KP-02", "MUST", R12, "event", "§1.2", "A 30443 carries exactly one `d` tag of 64 hex characters (lowercase in R2)"),
  r("MIP00-KP-03", "MUST", R12, "event", "§1.2", "The `mls_protocol_version` tag says exactly 1.0"),
  r("MIP00-KP-04", "MUST", R1, "event", "§1.2", "The `mls_ciphersuite` tag names 0x0001"),
  r("MIP00-KP-05", "MUST", R01, "event", "§1.2", "`mls_extensions` advertises both 0xf2ee and 0x000a"),
  r("MIP00-KP-06", "MUST", R01, "event", "§1.2", "`mls_extensions` does not list the default extensions 0x0001-0x0005"),
  r("MIP00-KP-07", "MUST", R1, "event", "§1.2", "A 30443 has an `mls_proposals` tag that includes 0x000a (self_remove)"),
  r("MIP00-KP-08", "MUST", R1, "event", "§1.2", "The tag [encoding, base64] is present and the content is standard base64"),
  r("MIP00-KP-09", "MUST NOT", R2, "event", "§1.1", "No `encoding` and no `relays` tag on a KeyPackage"),
  r("MIP00-KP-10", "MUST", R1, "event", "§1.2", "A `relays` tag lists at least one valid ws/wss URL"),
  r("MIP00-KP-11", "MUST", R12, "event", "§1.2", "Exactly one hex `i` tag, equal to the KeyPackageRef computed from the content"),
  r("MIP00-KP-12", "MUST", R1, "event", "§1.2", "The content is a bare TLS KeyPackage whose signature verifies"),
  r("MIP00-KP-13", "MUST", R2, "event", "§1.1", "The content is an MLSMessage with wire format mls_key_package"),
  r("MIP00-KP-14", "MUST", ALL, "event", "§2", "The credential is a BasicCredential whose 32-byte identity is the event pubkey"),
  r("MIP00-KP-15", "MUST", R2, "event", "§1.2", "Each id-list tag appears once, non-empty, values 0x + 4 lowercase hex, no repeats"),
  r("MIP00-KP-16", "MUST", R2, "event", "§1.2", "`app_components` includes 0x8009 and the leaf carries a valid account proof"),
  r("MIP00-KP-17", "MUST", R2, "event", "§2", "The KeyPackage Lifetime is current and spans at most 7,261,200 s"),
  r("MIP00-KP-18", "MUST", R12, "sequence", "§1.2", "A rotation keeps the same `d` and strictly increases created_at"),
  r("MIP00-KP-19", "MUST NOT", R2, "event", "§1.2", "The `d` value is not the pubkey, the KeyPackageRef or other identity material"),
  r("MIP00-KP-20", "SHOULD", R12, "sequence", "§1.2", "Inviters pick non-last-resort, newest KeyPackages, ties by lowest id/ref"),
  r("MIP00-KP-21", "SHOULD", R01, "event", "§1.2", "No NIP-70 `-` tag by default"),
  r("MIP00-KP-22", "MUST", R1, "sequence", "§1.1", "Kind 443 stays readable during migration; 30443 wins when both exist"),
  r("MIP00-KR-01", "MUST", R01, "event", "§1.1", "A kind 10051 lists at least one valid ws/wss `relay` tag and has empty content"),
  r("MIP00-KR-02", "SHOULD", R01, "sequence", "§1.1", "An author's 30443 reaches every relay of their 10051"),
  r("MIP00-KR-03", "MUST", R2, "event+state", "§1.1", "KeyPackages go only to write-capable NIP-65 10002 relays"),
  r("MIP00-DEL-01", "MUST", R1, "event", "§1.1", "A kind 5 removing a 30443 names it by `e` and/or `a` 30443:<pubkey>:<d>"),
  r("MIP00-CR-01", "MUST", ALL, "event+state", "§2", "No Update, UpdatePath or commit changes a member's credential identity"),
  // Group data (MIP-01)
  r("MIP01-GD-01", "MUST", R01, "event+state", "§3", "The GroupContext has exactly one 0xF2EE extension"),
  r("MIP01-GD-02", "MUST", R01, "event+state", "§3", "0xF2EE is required in required_capabilities and advertised by every leaf"),
  r("MIP01-GD-03", "MUST", R1, "event+state", "§2", "required_capabilities.proposal_types includes 0x000a"),
  r("MIP01-GD-04", "MUST", R01, "event+state", "§2", "The group also carries ratchet_tree and required_capabilities"),
  r("MIP01-GD-05", "MUST", R1, "bytes", "§3.2", "Group data decodes under its version (v1/v2 no trailing bytes, v3 adds secs), version not 0"),
  r("MIP01-GD-06", "MUST", R0, "bytes", "§3.1", "A Jan-layout v1 extension is at least 118 bytes and its fixed tail ends the data"),
  r("MIP01-GD-07", "MUST", R1, "bytes", "§3.2", "Image hash/key/upload key are empty or 32 bytes, image nonce empty or 12"),
  r("MIP01-GD-08", "MUST", R1, "bytes", "§3.3", "disappearing_message_secs is empty or 8 bytes and non-zero"),
  r("MIP01-GD-09", "MUST", R1, "bytes", "§3.2", "admin_pubkeys is a whole number of 32-byte keys without duplicates"),
  r("MIP01-GD-10", "MUST", R01, "bytes", "§3", "Name and description are UTF-8; every relay is a valid ws/wss URL"),
  r("MIP01-GD-11", "SHOULD", R01, "bytes", "§3.1", "1-20 relays, name at most 255 and description at most 1000 characters"),
  r("MIP01-GD-12", "MUST", R01, "event+state", "§3.4", "Only a member in the current admin list commits a 0xF2EE change"),
  r("MIP01-GD-13", "MUST", R1, "event+state", "§3.4", "No accepted commit leaves the admin list empty"),
  r("MIP01-GD-14", "MUST", ALL, "sequence", "§3.4", "The private MLS group id never shows up in a published event"),
  r("MIP01-GD-15", "MUST", R01, "sequence", "§3.4", "nostr_group_id changes only by an admin commit"),
  r("MIP01-IMG-01", "MUST", R1, "event+state", "§3.2", "A v2 group image decrypts with the seed-derived key and hashes to image_hash"),
  r("MIP01-IMG-02", "MUST", R1, "event+state", "§3.2", "The Blossom auth key of a group image derives from the upload seed"),
  // Welcome (MIP-02)
  r("MIP02-WL-01", "MUST", ALL, "event", "§4", "A Welcome is a 1059 with exactly one `p`, sealing a 13 that seals a 444 rumor"),
  r("MIP02-WL-02", "MUST", ALL, "rumor", "§4", "The 444 rumor has no `sig`"),
  r("MIP02-WL-03", "MUST", ALL, "rumor", "§4", "The rumor has exactly one `e` tag with a 64-hex KeyPackage event id"),
  r("MIP02-WL-04", "MUST", ALL, "rumor", "§4", "The rumor has a `relays` tag with at least one valid ws/wss URL"),
  r("MIP02-WL-05", "MUST", R12, "rumor", "§4", "R1: [encoding, base64] is present; R2: no `encoding` tag"),
  r("MIP02-WL-06", "MUST", ALL, "rumor", "§4", "The rumor content decodes to an MLSMessage with wire format mls_welcome"),
  r("MIP02-WL-07", "MUST", ALL, "sequence", "§4", "The gift wrap goes out only after a relay acknowledged its Add commit"),
  r("MIP02-WL-08", "MUST", ALL, "rumor", "§4", "The `e` KeyPackage's ref is the new_member of one Welcome secret"),
  r("MIP02-WL-09", "MUST", R2, "rumor", "§4", "The Welcome GroupInfo carries the ratchet_tree extension"),
  r("MIP02-WL-10", "MUST", R2, "rumor", "§4", "The GroupInfo signer is an active admin of the resulting group"),
  r("MIP02-WL-11", "MUST", ALL, "sequence", "§4", "A failed Welcome leaves the consumed KeyPackage in place (no delete, no rotation)"),
  r("MIP02-WL-12", "SHOULD", R12, "sequence", "§4", "After a successful join a new 30443 appears under the same `d`"),
  r("MIP02-WL-13", "MUST", R1, "sequence", "§4", "The joiner publishes a self-update commit within 24 hours of joining"),
  r("MIP02-WL-14", "SHOULD", R12, "sequence", "§4", "The joiner self-updates before its first application message"),
  r("MIP02-WL-15", "MUST", R2, "event+state", "§4", "A Welcome for an already retained MLS group id is refused, KeyPackage untouched"),
  r("MIP02-WL-16", "SHOULD", R2, "sequence", "§4", "Welcome gift wraps go to the recipient's 10050 inbox relays"),
  // Group events (MIP-03) envelope
  r("MIP03-GM-01", "MUST", ALL, "event", "§5.2", "Each 445 has exactly one `h` tag of 64 lowercase hex"),
  r("MIP03-GM-02", "MUST", ALL, "sequence", "§5.2", "A 445 signing key is fresh: never reused and never an account key"),
  r("MIP03-GM-03", "MUST", R12, "event", "§5.1", "445 content is standard base64 of at least 28 bytes"),
  r("MIP03-GM-04", "MUST", R12, "event+state", "§5.1", "445 content decrypts with ChaCha20-Poly1305 under a retained group-event key"),
  r("MIP03-GM-05", "MUST", R0, "event+state", "§5.1", "445 content is a NIP-44 v2 payload under the exporter-secret self conversation"),
  r("MIP03-GM-06", "MUST", R2, "event", "§5.2", "A 445 has only `h` and at most one numeric `expiration`"),
  r("MIP03-GM-07", "MUST NOT", R2, "event+state", "§5.3", "A 445 carrying a commit or proposal has an `expiration` tag"),
  r("MIP03-GM-08", "SHOULD", R12, "event+state", "§5.3", "With retention set, an application 445 carries the matching `expiration`"),
  r("MIP03-GM-09", "MUST", R1, "event+state", "§5.3", "Without a disappearing duration, a 445 has no `expiration` tag"),
  r("MIP03-GM-10", "MUST", R12, "event", "§5.2", "The 445 NIP-01 id and signature verify"),
  r("MIP03-GM-11", "MUST", ALL, "event+state", "§5.1", "The decrypted bytes decode as an MLSMessage"),
  r("MIP03-GM-12", "MUST", R2, "event+state", "§2", "Handshake messages are PublicMessage, application messages PrivateMessage"),
  r("MIP03-GM-13", "MUST NOT", R2, "sequence", "§5.5", "Dedup or ordering relies on the Nostr id or created_at"),
  // Inner application message
  r("MIP03-APP-01", "MUST", ALL, "event+state", "§5.6", "Decrypted application data is a JSON rumor without `sig`"),
  r("MIP03-APP-02", "MUST", ALL, "event+state", "§5.6", "The rumor pubkey is the MLS sender's credential identity"),
  r("MIP03-APP-03", "MUST", R12, "event+state", "§5.6", "The rumor id is the NIP-01 hash of its fields"),
  r("MIP03-APP-04", "MUST", R2, "event+state", "§5.6", "The rumor has exactly the six NIP-01 members and a lowercase 64-hex pubkey"),
  r("MIP03-APP-05", "MUST NOT", R01, "event+state", "§5.6", "The rumor carries an `h` tag or another group identifier"),
  r("MIP03-APP-06", "MUST", R2, "sequence", "§5.6", "A 1009 edit has one `e` and counts only when the author matches the original"),
  // Commits and proposals
  r("MIP03-CM-01", "MUST", ALL, "event+state", "§5.4", "A non-admin commit is only a pure self-update of the sender's leaf"),
  r("MIP03-CM-02", "MUST", R12, "event+state", "§5.4", "A non-admin SelfRemove-only commit is accepted (never mixed with other changes)"),
  r("MIP03-CM-03", "MUST", R12, "event+state", "§5.4", "A SelfRemove proposal from an active admin is invalid"),
  r("MIP03-CM-04", "MUST", R12, "event+state", "§5.4", "A leaving member never commits its own SelfRemove"),
  r("MIP03-CM-05", "MUST", R12, "event+state", "§5.4", "A SelfRemove proposal travels as an MLS PublicMessage"),
  r("MIP03-CM-06", "MUST", ALL, "event+state", "§5.4", "Add, remove-other, GCE and component-update commits come from an active admin"),
  r("MIP03-CM-07", "MUST", R2, "event+state", "§5.4", "Removing an admin's last leaf also removes the key from the admins"),
  r("MIP03-CM-08", "MUST", R01, "sequence", "§5.5", "The group-creation (epoch 0) commit is never published as a 445"),
  r("MIP03-CM-09", "MUST", ALL, "sequence", "§5.5", "A sender uses its new epoch only after at least one relay OK for its commit"),
  r("MIP03-CM-10", "MUST", R01, "sequence", "§5.5", "Of competing commits for one epoch, the earliest created_at then lowest id wins"),
  r("MIP03-CM-11", "MUST", R2, "sequence", "§5.5", "Competing branches are ordered by the convergence v1 policy only"),
  r("MIP03-CM-12", "SHOULD", R01, "sequence", "§5.5", "Previous epoch states are kept for rollback (MDK: 5)"),
  r("MIP03-CM-13", "MUST", R2, "sequence", "§5.5", "Commits and app messages more than 5 epochs behind are stale"),
  r("MIP03-CM-14", "MUST", R2, "event+state", "§8.1", "A disband commit leaves admins={committer}, removes all others, sets lifecycle 0x01"),
  // Media (MIP-04)
  r("MIP04-MD-01", "MUST", R01, "rumor", "§6", "Each imeta has url, m, filename, x (64 hex), n (24 hex) and v mip04-v2"),
  r("MIP04-MD-02", "MUST", R01, "rumor", "§6", "An imeta with v mip04-v1 or a missing/bad `n` is rejected"),
  r("MIP04-MD-03", "MUST", R1, "event+state", "§6", "The file key is HKDF-Expand over MLS-Exporter(marmot, encrypted-media, 32)"),
  r("MIP04-MD-04", "MUST", R0, "event+state", "§6", "The R0 media exporter is MLS-Exporter(nostr, nostr, 32)"),
  r("MIP04-MD-05", "MUST", ALL, "bytes", "§6", "The AAD is label||0||sha256(plain)||0||mime||0||filename"),
  r("MIP04-MD-06", "MUST", ALL, "bytes", "§6", "The decrypted file hashes to `x` and the blob hashes to its Blossom address"),
  r("MIP04-MD-07", "MUST", R2, "rumor", "§6", "An R2 imeta uses encrypted-media-v2, has a locator, no blurhash, no repeats"),
  r("MIP04-MD-08", "MUST", ALL, "rumor", "§6", "The MIME type in the imeta is canonical"),
  // Push (MIP-05)
  r("MIP05-PN-01", "MUST", ALL, "event+state", "§7", "Inner 447/448/449 events are unsigned and travel inside 445"),
  r("MIP05-PN-02", "MUST", ALL, "bytes", "§7", "Encrypted tokens are 280 bytes (R0) or 1084 bytes (R1/R2)"),
  r("MIP05-PN-03", "MUST", ALL, "event", "§7", "A 446 rumor pubkey is ephemeral and signs its seal"),
  r("MIP05-PN-04", "MUST", R01, "rumor", "§7", "A 448 has one `e` to a 447 and five-element `token` tags"),
  r("MIP05-PN-05", "MUST", R2, "rumor", "§7", "447/448/449 JSON has v marmot-push-v1, at most 32 entries, valid owner_sig"),
  r("MIP05-PN-06", "MUST", R12, "rumor", "§7", "A 446 has the revision's `v` (and R1 `encoding`) tags and 1084-byte chunks"),
  r("MIP05-PN-07", "MUST", R12, "bytes", "§7", "Tokens decrypt with the revision's ECDH+HKDF salt and info"),
  // Core (R2)
  r("CORE-RT-01", "MUST", R2, "bytes", "§3.5", "The routing component has a 32-byte id and a sorted unique non-empty relay list"),
  r("CORE-RT-02", "MUST", R2, "event+state", "§8.1", "A routing change is published under the prior `h`"),
  r("CORE-AP-01", "MUST", R2, "event+state", "§3.5", "The admin policy is present, required, sorted, unique, non-empty, admins have leaves"),
  r("CORE-AC-01", "MUST", R2, "event+state", "§3.5", "KeyPackages and leaves advertise 0x0008 and app_components; new groups require the core set"),
  r("CORE-DUP-01", "MUST", R2, "sequence", "§8.1", "Identical MLS bytes in two 445s give one duplicate outcome"),
  r("CORE-CONF-01", "MUST", R2, "bytes", "§8.1", "The conformance commitment hashes the domain string and the conformance exporter"),
]);

const BY_ID = new Map(RULES.map((rule) => [rule.id, rule]));

export function getRule(id: string): Rule | undefined {
  return BY_ID.get(id);
}

export function rulesForProfile(profile: ProtocolProfile): Rule[] {
  return RULES.filter((rule) => rule.profiles.includes(profile));
}

/** A MUST or MUST NOT rule: its failure fails the run. */
export function isMandatory(rule: Rule): boolean {
  return rule.level !== "SHOULD";
}
