// Entry point of an out-of-process engine peer (what `marmot-harness peer` runs), loading only the
// peer's own modules: registers the TypeScript loader, then serves the peer protocol on stdio.
import { register } from "tsx/esm/api";

register();
await import("../platform/install-base64.ts");
const { serveEnginePeerOnStdio } = await import("./stdio-peer.ts");
// The only option: --publish-timeout <ms> (as `marmot-harness peer` takes it).
const at = process.argv.indexOf("--publish-timeout");
const publishTimeoutMs = at > 0 ? Number(process.argv[at + 1]) : undefined;
if (publishTimeoutMs !== undefined && !(Number.isInteger(publishTimeoutMs) && publishTimeoutMs > 0)) {
  console.error(`--publish-timeout must be a positive integer (ms), got ${process.argv[at + 1]}`);
  process.exit(2);
}
await serveEnginePeerOnStdio(publishTimeoutMs ? { publishTimeoutMs } : {});
