/**
 * Third-party relay images started with testcontainers (strfry, nostr-rs-relay), where a
 * container engine exists. Where none does, `containerRuntime()` says why, and callers skip
 * with that reason. Images are not pulled by the tests here; they must be present locally
 * (or pullable on the CI runner).
 */
import { describeError } from "../errors.ts";
import { RelayError } from "../simulated-relay/messages.ts";

export interface ContainerRelaySpec {
  image: string;
  /** Port the relay listens on inside the container. */
  port: number;
  /** Extra files (path inside the container → content), e.g. a config. */
  files?: Record<string, string>;
  command?: string[];
}

export const RELAY_IMAGES: Record<"strfry" | "nostr-rs-relay", ContainerRelaySpec> = {
  strfry: {
    image: process.env.MARMOT_STRFRY_IMAGE ?? "dockurr/strfry:latest",
    port: 7777,
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
