/**
 * White-box rules judged from what the harness's agents observed inside MLS (keyring
 * `observations`): inner rumors and their author binding, media imeta, commit authorisation,
 * group data bytes and GroupContext state.
 */
import { createHash } from "node:crypto";
import { eventId } from "../../nostr/event-id.ts";
import { decodeGroupData } from "../../engine/mip01-group-data.ts";
import { isCanonicalMime } from "../../engine/mip04-media.ts";
import type { CheckContext } from "./context.ts";
import type { ApplicationObservation, CommitObservation, GroupStateObservation } from "./keyring.ts";
import { bytesToHex, decodeBase64Strict, hexToBytes, isHex, isHex64Lower, isPlainObject, safeTags, tagsNamed } from "./util.ts";

const RUMOR_MEMBERS = ["id", "pubkey", "created_at", "kind", "tags", "content"];

function checkApplication(ctx: CheckContext, o: ApplicationObservation): void {
  const { j } = ctx;
  const id = o.eventId;
  const r = o.rumor;
  if (!isPlainObject(r)) {
    j.fail("MIP03-APP-01", id, "decrypted application data is not a JSON object");
    return;
  }
  const shapeOk = typeof r.pubkey === "string" && typeof r.kind === "number" && typeof r.content === "string" && Array.isArray(r.tags) && typeof r.created_at === "number";
  j.check("MIP03-APP-01", !("sig" in r) && shapeOk, id, "sig" in r ? "inner rumor carries a sig" : "inner rumor lacks NIP-01 fields");
  j.check("MIP03-APP-02", r.pubkey === o.sender, id, `inner rumor pubkey ${String(r.pubkey).slice(0, 12)}… is not the MLS sender ${String(o.sender).slice(0, 12)}…`);
  if (j.applies("MIP03-APP-03")) {
    let expected: string | undefined;
    try {
      expected = shapeOk ? eventId(r as never) : undefined;
    } catch {
      expected = undefined;
    }
    j.check("MIP03-APP-03", expected !== undefined && r.id === expected, id, `inner rumor id ${String(r.id).slice(0, 12)}… is not its NIP-01 hash`);
  }
  if (j.applies("MIP03-APP-04")) {
    const keys = Object.keys(r).sort();
    const ok = keys.length === 6 && RUMOR_MEMBERS.every((k) => keys.includes(k)) && isHex64Lower(r.pubkey);
    j.check("MIP03-APP-04", ok, id, `inner rumor members ${JSON.stringify(keys)} are not exactly the six NIP-01 members with a lowercase pubkey`);
  }
  const tags = safeTags(r.tags);
  if (j.applies("MIP03-APP-05")) {
    const gid = o.nostrGroupId?.toLowerCase();
    const outer = ctx.byId.get(id);
    const hOuter = outer ? tagsNamed(outer.event.tags, "h")[0]?.[1] : undefined;
    const ids = [gid, hOuter].filter((x): x is string => typeof x === "string");
    const leaks = tags.filter((t) => t[0] === "h" || t.slice(1).some((v) => ids.includes(v.toLowerCase())));
    j.check("MIP03-APP-05", leaks.length === 0, id, `inner rumor carries group identifier tag(s) ${JSON.stringify(leaks.map((t) => t[0]))}`);
  }
  // MIP-05 inner push events (447 request, 448 list, 449 removal)
  if (r.kind === 447 || r.kind === 448 || r.kind === 449) {
    j.check("MIP05-PN-01", !("sig" in r), id, `inner kind ${String(r.kind)} carries a sig`);
    if (ctx.profile !== "R2") {
      const size = ctx.profile === "R0" ? 280 : 1084;
      for (const t of tags) {
        if (t[0] !== "token") continue;
        const b = decodeBase64Strict(t[1]);
        j.check("MIP05-PN-02", b !== undefined && b.length === size, id, `encrypted token is ${b?.length ?? "not base64"} bytes (expected ${size})`);
      }
      if (r.kind === 448) {
        const es = tags.filter((t) => t[0] === "e");
        const bad = tags.filter((t) => t[0] === "token" && t.length !== 5);
        j.check("MIP05-PN-04", es.length === 1 && bad.length === 0, id, es.length !== 1 ? `448 has ${es.length} e tags (expected one)` : `token tag(s) without 5 elements: ${bad.map((t) => t.length).join(", ")}`);
      }
    }
  }
  // APP-06 (R2): a 1009 edit has exactly one e and the original's author
  if (r.kind === 1009 && j.applies("MIP03-APP-06")) {
    const es = tags.filter((t) => t[0] === "e");
    const target = es.length === 1 ? ctx.observations.find((x) => x.kind === "application" && isPlainObject(x.rumor) && x.rumor.id === es[0]?.[1]) : undefined;
    const origAuthor = target && target.kind === "application" ? target.sender : undefined;
    if (es.length !== 1) j.fail("MIP03-APP-06", id, `edit has ${es.length} e tags (expected exactly one)`);
    else if (origAuthor !== undefined) j.check("MIP03-APP-06", origAuthor === o.sender, id, "an edit by another account than the original author was delivered");
  }
  // Media imeta (MIP04-MD-01/02/07/08)
  for (const t of tags) {
    if (t[0] !== "imeta") continue;
    if (j.applies("MIP04-MD-07")) {
      const names = t.slice(1).map((e) => e.slice(0, Math.max(0, e.indexOf(" "))));
      const repeated = names.filter((n, i) => n !== "locator" && names.indexOf(n) !== i);
      const problems: string[] = [];
      if (!t.includes("v encrypted-media-v2")) problems.push("v is not encrypted-media-v2");
      if (!names.includes("locator")) problems.push("no locator");
      if (names.includes("blurhash")) problems.push("carries blurhash");
      if (repeated.length) problems.push(`repeats ${[...new Set(repeated)].join(", ")}`);
      j.check("MIP04-MD-07", problems.length === 0, id, `imeta: ${problems.join("; ")}`);
      continue;
    }
    const f = new Map<string, string>();
    for (const entry of t.slice(1)) {
      const sp = entry.indexOf(" ");
      if (sp > 0) f.set(entry.slice(0, sp), entry.slice(sp + 1));
    }
    const v = f.get("v");
    const x = f.get("x");
    const n = f.get("n");
    const missing = ["url", "m", "filename", "x", "n", "v"].filter((k) => !f.has(k));
    const md01 = missing.length === 0 && /^[0-9a-f]{64}$/i.test(x ?? "") && /^[0-9a-f]{24}$/i.test(n ?? "") && v === "mip04-v2";
    j.check("MIP04-MD-01", md01, id, missing.length ? `imeta lacks ${missing.join(", ")}` : `imeta fields malformed (x ${x?.length ?? 0} chars, n ${n?.length ?? 0} chars, v ${v})`);
    const md02Bad = v === "mip04-v1" || n === undefined || !/^[0-9a-f]{24}$/i.test(n);
    j.check("MIP04-MD-02", !md02Bad, id, v === "mip04-v1" ? "an imeta with v mip04-v1 was accepted" : "an imeta with a missing or malformed n was accepted");
    const m = f.get("m");
    if (m !== undefined) j.check("MIP04-MD-08", isCanonicalMime(m), id, `imeta MIME ${JSON.stringify(m)} is not canonical`);
  }
}

const GD_RULE_BY_CODE: Record<string, string> = {
  GD_IMAGE_FIELD_SIZE: "MIP01-GD-07",
  GD_DISAPPEARING_SIZE: "MIP01-GD-08",
  GD_ZERO_DISAPPEARING: "MIP01-GD-08",
  GD_ADMINS: "MIP01-GD-09",
  GD_RELAY_URL: "MIP01-GD-10",
  GD_UTF8: "MIP01-GD-10",
};

/** Judge one group-data blob (0xF2EE bytes) under GD-05..GD-11. Returns the decoded admins. */
function checkGroupDataBytes(ctx: CheckContext, hex: string, subject: string): string[] | undefined {
  const { j } = ctx;
  if (hex === "" || !isHex(hex)) {
    j.fail(ctx.profile === "R0" ? "MIP01-GD-06" : "MIP01-GD-05", subject, "group data is empty or not hex");
    return undefined;
  }
  const bytes = hexToBytes(hex);
  const version = bytes.length >= 2 ? ((bytes[0] as number) << 8) | (bytes[1] as number) : -1;
  const layoutRule = version === 1 && ctx.profile === "R0" ? "MIP01-GD-06" : "MIP01-GD-05";
  try {
    const d = decodeGroupData(bytes);
    for (const r of ["MIP01-GD-05", "MIP01-GD-06", "MIP01-GD-07", "MIP01-GD-08", "MIP01-GD-09", "MIP01-GD-10"]) {
      if (r === "MIP01-GD-06" && version !== 1) continue;
      if (r === "MIP01-GD-05" && version === 1 && ctx.profile === "R0") continue;
      j.pass(r);
    }
    const nameChars = [...d.name].length;
    const descChars = [...d.description].length;
    const soft: string[] = [];
    if (nameChars > 255) soft.push(`name has ${nameChars} characters`);
    if (descChars > 1000) soft.push(`description has ${descChars} characters`);
    if (d.relays.length < 1 || d.relays.length > 20) soft.push(`${d.relays.length} relays`);
    j.check("MIP01-GD-11", soft.length === 0, subject, soft.join("; "));
    return d.adminPubkeys;
  } catch (e) {
    const code = (e as { code?: string }).code ?? "";
    const rule = GD_RULE_BY_CODE[code] ?? layoutRule;
    j.fail(rule, subject, `group data: ${(e as Error).message}`);
    return undefined;
  }
}

function groupIdOf(hex: string | undefined): string | undefined {
  if (!hex || !isHex(hex)) return undefined;
  try {
    return bytesToHex(decodeGroupData(hexToBytes(hex)).nostrGroupId);
  } catch {
    return undefined;
  }
}

function checkCommit(ctx: CheckContext, o: CommitObservation): void {
  const { j } = ctx;
  const id = o.eventId;
  const applied = o.decision !== "rejected";
  const proposals = o.proposals ?? [];
  let adminsBefore: string[] | undefined;
  if (o.groupDataBefore !== undefined) {
    try {
      adminsBefore = decodeGroupData(hexToBytes(o.groupDataBefore)).adminPubkeys;
    } catch {
      adminsBefore = undefined;
    }
  }
  const isAdmin = o.committerIsAdmin ?? (adminsBefore && o.committer ? adminsBefore.includes(o.committer) : undefined);
  const types = proposals.map((p) => p.type);
  const selfUpdate = proposals.every((p) => p.type === "update" && (p.sender === undefined || p.sender === o.committer));
  const selfRemoveOnly = proposals.length > 0 && types.every((t) => t === "self_remove");
  const hasSelfRemove = types.includes("self_remove");
  if (isAdmin === false && o.proposals !== undefined) {
    // CM-01 / CM-02
    if (selfUpdate) j.pass("MIP03-CM-01");
    else if (selfRemoveOnly && ctx.profile !== "R0") {
      j.pass("MIP03-CM-01");
      j.check("MIP03-CM-02", applied, id, "a non-admin SelfRemove-only commit was rejected");
    } else {
      j.check("MIP03-CM-01", !applied, id, `a non-admin commit with ${JSON.stringify(types)} was accepted`);
      if (hasSelfRemove) j.check("MIP03-CM-02", !applied, id, "a non-admin commit mixing SelfRemove with other changes was accepted");
    }
  }
  // CM-03: SelfRemove from an admin
  for (const p of proposals) {
    if (p.type === "self_remove" && p.senderIsAdmin !== undefined) j.check("MIP03-CM-03", !(p.senderIsAdmin && applied), id, "a commit applied a SelfRemove proposed by an active admin");
  }
  // CM-04: committer commits its own SelfRemove
  if (hasSelfRemove && o.committer !== undefined) {
    const own = proposals.some((p) => p.type === "self_remove" && p.sender === o.committer);
    j.check("MIP03-CM-04", !own, id, "the leaving member committed its own SelfRemove");
  }
  // CM-06: admin-gated changes
  const gated = proposals.filter((p) => p.type === "add" || p.type === "group_context_extensions" || (p.type === "remove" && p.target !== undefined && p.target !== o.committer));
  if (gated.length > 0 && isAdmin !== undefined) j.check("MIP03-CM-06", isAdmin || !applied, id, `a non-admin's commit with ${JSON.stringify(gated.map((p) => p.type))} was accepted`);
  // GD-12 / GD-15: group data changes by admins only
  const changed = o.groupDataBefore !== undefined && o.groupDataAfter !== undefined ? o.groupDataBefore.toLowerCase() !== o.groupDataAfter.toLowerCase() : types.includes("group_context_extensions") ? true : undefined;
  if (changed === true && applied) {
    const committerAdmin = adminsBefore !== undefined && o.committer !== undefined ? adminsBefore.includes(o.committer) : isAdmin;
    if (committerAdmin !== undefined) {
      j.check("MIP01-GD-12", committerAdmin, id, "a member outside the current admin list changed 0xF2EE");
      const gidBefore = groupIdOf(o.groupDataBefore);
      const gidAfter = groupIdOf(o.groupDataAfter);
      if (gidBefore !== undefined && gidAfter !== undefined && gidBefore !== gidAfter) j.check("MIP01-GD-15", committerAdmin, id, "nostr_group_id changed by a non-admin commit");
    }
  }
  if (o.groupDataBefore !== undefined && o.groupDataAfter !== undefined && applied) {
    const b = groupIdOf(o.groupDataBefore);
    const a = groupIdOf(o.groupDataAfter);
    if (b !== undefined && a !== undefined && a === b) j.pass("MIP01-GD-15");
  }
  // CM-07 (R2): removing an admin's (last) leaf also removes the key from the admins
  if (j.applies("MIP03-CM-07") && applied) {
    let after = o.adminsAfter;
    if (after === undefined && o.groupDataAfter !== undefined) {
      try {
        after = decodeGroupData(hexToBytes(o.groupDataAfter)).adminPubkeys;
      } catch {
        after = undefined;
      }
    }
    const removedAdmins = proposals.filter((p) => (p.type === "remove" || p.type === "self_remove") && p.target !== undefined && (adminsBefore?.includes(p.target) ?? false));
    if (after !== undefined && removedAdmins.length > 0) {
      const kept = removedAdmins.filter((p) => after?.includes(p.target as string));
      j.check("MIP03-CM-07", kept.length === 0, id, `removed member(s) ${kept.map((p) => (p.target as string).slice(0, 12) + "…").join(", ")} still listed as admin`);
    }
  }
  // GD-13: no empty admin list after an accepted commit
  if (applied) {
    let after = o.adminsAfter;
    if (after === undefined && o.groupDataAfter !== undefined) after = checkGroupDataBytes(ctx, o.groupDataAfter, id);
    if (after !== undefined) j.check("MIP01-GD-13", after.length > 0, id, "an accepted commit left the admin list empty");
  }
}

function checkGroupState(ctx: CheckContext, o: GroupStateObservation, subject: string): void {
  const { j } = ctx;
  if (o.extensionTypes !== undefined) {
    const n = o.extensionTypes.filter((t) => t === 0xf2ee).length;
    j.check("MIP01-GD-01", n === 1, subject, `GroupContext has ${n} 0xF2EE extensions`);
    j.check("MIP01-GD-04", o.extensionTypes.includes(0x0003), subject, "GroupContext has no required_capabilities extension");
  }
  if (o.requiredCapabilities === undefined && o.extensionTypes !== undefined && !o.extensionTypes.includes(0x0003)) {
    j.fail("MIP01-GD-02", subject, "the group has no required_capabilities, so 0xF2EE is not required");
    j.fail("MIP01-GD-03", subject, "the group has no required_capabilities, so self_remove (0x000a) is not required");
  }
  if (o.requiredCapabilities !== undefined) {
    const leavesOk = (o.leafExtensions ?? []).every((l) => l.includes(0xf2ee));
    j.check("MIP01-GD-02", o.requiredCapabilities.extensions.includes(0xf2ee) && leavesOk, subject, !o.requiredCapabilities.extensions.includes(0xf2ee) ? "0xF2EE is not in required_capabilities" : "a leaf does not advertise 0xF2EE");
    j.check("MIP01-GD-03", o.requiredCapabilities.proposals.includes(0x000a), subject, "required_capabilities.proposal_types lacks 0x000a (self_remove)");
  }
  if (o.groupData !== undefined) checkGroupDataBytes(ctx, o.groupData, subject);
  // CORE-CONF-01 (R2): commitment = SHA256("marmot-convergence-conformance-v1" || 0x00 || exporter)
  if (o.epochCommitment !== undefined && o.conformanceExporter !== undefined && j.applies("CORE-CONF-01")) {
    const ok = isHex(o.conformanceExporter) && o.conformanceExporter.length === 64;
    const expected = ok
      ? createHash("sha256").update(Buffer.concat([Buffer.from(CONFORMANCE_DOMAIN, "ascii"), Buffer.from([0]), Buffer.from(o.conformanceExporter, "hex")])).digest("hex")
      : "";
    j.check("CORE-CONF-01", ok && expected === o.epochCommitment.toLowerCase(), subject, ok ? `conformance commitment ${o.epochCommitment.slice(0, 12)}… is not SHA256(domain || 0x00 || exporter) = ${expected.slice(0, 12)}…` : "conformance exporter is not 32 bytes of hex");
  }
}

/** The 33-byte ASCII domain string of the R2 conformance commitment. */
const CONFORMANCE_DOMAIN = "marmot-convergence-conformance-v1";

export function checkObservations(ctx: CheckContext): void {
  const seenApp = new Set<string>();
  const seenCommit = new Set<string>();
  const seenState = new Set<string>();
  for (const o of ctx.observations) {
    if (o.kind === "application") {
      if (seenApp.has(o.eventId)) continue;
      seenApp.add(o.eventId);
      checkApplication(ctx, o);
    } else if (o.kind === "commit") {
      const k = `${o.eventId}:${o.agent ?? ""}`;
      if (seenCommit.has(k)) continue;
      seenCommit.add(k);
      checkCommit(ctx, o);
    } else if (o.kind === "proposal") {
      if (o.proposal === "self_remove" && o.senderIsAdmin !== undefined) ctx.j.check("MIP03-CM-03", !o.senderIsAdmin, o.eventId, "an active admin sent a SelfRemove proposal");
      const d = ctx.decoded445.get(o.eventId);
      if (o.proposal === "self_remove" && d?.wireformat !== undefined) ctx.j.check("MIP03-CM-05", d.wireformat === 1, o.eventId, "SelfRemove proposal is not a PublicMessage");
    } else if (o.kind === "group-state") {
      const k = `${o.nostrGroupId}:${o.epoch}:${o.groupData ?? ""}:${JSON.stringify(o.requiredCapabilities ?? null)}`;
      if (seenState.has(k)) continue;
      seenState.add(k);
      checkGroupState(ctx, o, `group ${o.nostrGroupId.slice(0, 12)}… epoch ${o.epoch}`);
    }
  }
}
