/**
 * Third-party relay images started with testcontainers (strfry, nostr-rs-relay), where a
 * container engine exists. Where none does, `containerRuntime()` says why, and callers skip
 * with that reason. Images are not pulled by the tests here; they must be present locally
 * (or pullable on the CI runner).
 */
import { describeError } from "../errors.ts";
import { DEFAULT_LIMITS } from "../simulated-relay/core.ts";
import { RelayError } from "../simulated-relay/messages.ts";

export interface ContainerRelaySpec {
  image: string;
  /** Port the relay listens on inside the container. */
  port: number;
  /** Extra files (path inside the container → content), e.g. a config. */
  files?: Record<string, string>;
  command?: string[];
}

export interface StrfryConfigOptions {
  /** Port strfry listens on inside the container (default 7777). */
  port?: number;
  /** Largest normalised event JSON accepted, in bytes (default 256 KiB, as our relay: a 60 KiB Welcome fits). */
  maxEventSize?: number;
  /** Largest WebSocket frame, in bytes (default 512 KiB, as our relay). */
  maxWebsocketPayloadSize?: number;
  /** Tags per event (default 2500, as our relay). */
  maxNumTags?: number;
}

/**
 * A strfry configuration for the harness: binds every interface inside the container (the
 * container's port is mapped to the host's loopback by testcontainers), keeps its LMDB database in
 * a throw-away directory, raises strfry's 64 KiB default event size to our relay's limits so that
 * Welcome-sized gift wraps can be checked, accepts back-dated events (gift wraps are back-dated up
 * to two days) and does not limit open files (containers often cannot raise the limit).
 * strfry reads `/etc/strfry.conf` when no `--config` is given; an image that starts it with another
 * config path needs `command` set accordingly. Untested here: this machine has no container runtime.
 */
export function strfryConfig(o: StrfryConfigOptions = {}): string {
  return [
    `db = "/tmp/strfry-db/"`,
    `dbParams {`,
    `  maxreaders = 256`,
    `  mapsize = 10737418240`,
    `}`,
    `events {`,
    `  maxEventSize = ${o.maxEventSize ?? DEFAULT_LIMITS.maxEventBytes}`,
    `  rejectEventsNewerThanSeconds = 900`,
    `  rejectEventsOlderThanSeconds = 94608000`,
    `  rejectEphemeralEventsOlderThanSeconds = 60`,
    `  ephemeralEventsLifetimeSeconds = 300`,
    `  maxNumTags = ${o.maxNumTags ?? DEFAULT_LIMITS.maxEventTags}`,
    `  maxTagValSize = 1024`,
    `}`,
    `relay {`,
    `  bind = "0.0.0.0"`,
    `  port = ${o.port ?? 7777}`,
    `  nofiles = 0`,
    `  realIpHeader = ""`,
    `  info {`,
    `    name = "strfry (marmot-harness conformance)"`,
    `    description = "strfry started by marmot-harness for relay conformance checks"`,
    `  }`,
    `  maxWebsocketPayloadSize = ${o.maxWebsocketPayloadSize ?? DEFAULT_LIMITS.maxMessageBytes}`,
    `  autoPingSeconds = 55`,
    `  enableTcpKeepalive = false`,
    `  queryTimesliceBudgetMicroseconds = 10000`,
    `  maxFilterLimit = ${DEFAULT_LIMITS.maxLimit}`,
    `  maxSubsPerConnection = ${DEFAULT_LIMITS.maxSubscriptions}`,
    `  writePolicy {`,
    `    plugin = ""`,
    `  }`,
    `  compression {`,
    `    enabled = false`,
    `    slidingWindow = false`,
    `  }`,
    `  logging {`,
    `    dumpInAll = false`,
    `    dumpInEvents = false`,
    `    dumpInReqs = false`,
    `    dbScanPerf = false`,
    `    invalidEvents = true`,
    `  }`,
    `}`,
    ``,
  ].join("\n");
}

export const RELAY_IMAGES: Record<"strfry" | "nostr-rs-relay", ContainerRelaySpec> = {
  strfry: {
    image: process.env.MARMOT_STRFRY_IMAGE ?? "dockurr/strfry:latest",
    port: 7777,
    // The database directory must exist before strfry opens it: a placeholder file creates it.
    files: { "/etc/strfry.conf": strfryConfig(), "/tmp/strfry-db/.keep": "" },
  },
  "nostr-rs-relay": {
    image: process.env.MARMOT_NOSTR_RS_RELAY_IMAGE ?? "scsibug/nostr-rs-relay:latest",
    port: 8080,
  },
};

export type RuntimeStatus = { ok: true; info: string } | { ok: false; reason: string };

/** Is there a working container runtime (Docker or Podman API)? Never throws. */
export async function containerRuntime(): Promise<RuntimeStatus> {
  try {
    const { getContainerRuntimeClient } = await import("testcontainers");
    const client = await getContainerRuntimeClient();
    return { ok: true, info: `${client.info.containerRuntime.host} (${client.info.node.version ?? "?"})` };
  } catch (e) {
    return { ok: false, reason: `no container runtime: ${describeError(e)}` };
  }
}

export interface ContainerRelay {
  name: string;
  url: string;
  close(): Promise<void>;
}

/** Start a relay image and wait until its port answers. Throws CONTAINER_UNAVAILABLE without a runtime. */
export async function startContainerRelay(name: keyof typeof RELAY_IMAGES, spec: ContainerRelaySpec = RELAY_IMAGES[name]): Promise<ContainerRelay> {
  const rt = await containerRuntime();
  if (!rt.ok) throw new RelayError("CONTAINER_UNAVAILABLE", rt.reason, { relay: name });
  const { GenericContainer, Wait } = await import("testcontainers");
  let c = new GenericContainer(spec.image).withExposedPorts(spec.port).withWaitStrategy(Wait.forListeningPorts());
  if (spec.files) c = c.withCopyContentToContainer(Object.entries(spec.files).map(([target, content]) => ({ target, content })));
  if (spec.command) c = c.withCommand(spec.command);
  const started = await c.start();
  const url = `ws://${started.getHost()}:${started.getMappedPort(spec.port)}`;
  return {
    name,
    url,
    close: async () => {
      await started.stop();
    },
  };
}
