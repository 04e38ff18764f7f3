import { describe, it, expect } from "vitest";
import { RELAY_IMAGES, strfryConfig } from "../../src/relays/containers.ts";
import { DEFAULT_LIMITS } from "../../src/simulated-relay/core.ts";

/** The value of `key = value` inside the named top-level block of a strfry config. */
function setting(conf: string, block: string, key: string): string | undefined {
  const start = conf.indexOf(`\n${block} {`);
  if (start < 0) return undefined;
  const body = conf.slice(start);
  const m = new RegExp(`\\n\\s*${key} = ("[^"]*"|\\S+)`).exec(body);
  return m?.[1];
}

describe("strfry configuration for the container backend (the container itself is untested here)", () => {
  it("binds every interface inside the container, keeps the db in a directory the spec creates, and takes our relay's limits", () => {
    const conf = strfryConfig();
    expect(setting(conf, "relay", "bind")).toBe('"0.0.0.0"');
    expect(setting(conf, "relay", "port")).toBe("7777");
    expect(setting(conf, "relay", "nofiles")).toBe("0");
    expect(Number(setting(conf, "events", "maxEventSize"))).toBe(DEFAULT_LIMITS.maxEventBytes);
    expect(Number(setting(conf, "relay", "maxWebsocketPayloadSize"))).toBe(DEFAULT_LIMITS.maxMessageBytes);
    expect(Number(setting(conf, "relay", "maxSubsPerConnection"))).toBe(DEFAULT_LIMITS.maxSubscriptions);
    // A 60 KiB Welcome-sized event fits (strfry's own default of 64 KiB would refuse it once encoded).
    expect(Number(setting(conf, "events", "maxEventSize"))).toBeGreaterThan(2 * 60 * 1024);
    // Gift wraps are back-dated up to two days: not refused as old.
    expect(Number(setting(conf, "events", "rejectEventsOlderThanSeconds"))).toBeGreaterThan(2 * 86400);
    const spec = RELAY_IMAGES.strfry;
    expect(spec.files?.["/etc/strfry.conf"]).toBe(conf);
    expect(/^db = "([^"]+)"/m.exec(conf)?.[1]).toBe("/tmp/strfry-db/");
    expect(Object.keys(spec.files ?? {})).toContain("/tmp/strfry-db/.keep");
    // Braces balance (a config strfry would at least parse structurally).
    expect((conf.match(/{/g) ?? []).length).toBe((conf.match(/}/g) ?? []).length);
  });

  it("overrides apply", () => {
    const conf = strfryConfig({ port: 9000, maxEventSize: 70_000, maxWebsocketPayloadSize: 100_000, maxNumTags: 10 });
    expect(setting(conf, "relay", "port")).toBe("9000");
    expect(setting(conf, "events", "maxEventSize")).toBe("70000");
    expect(setting(conf, "relay", "maxWebsocketPayloadSize")).toBe("100000");
    expect(setting(conf, "events", "maxNumTags")).toBe("10");
  });
});
