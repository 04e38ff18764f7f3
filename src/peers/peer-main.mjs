// Entry point of an out-of-process engine peer (what `marmot-harness peer` runs), loading only the
// peer's own modules: registers the TypeScript loader, then serves the peer protocol on stdio.
import { register } from "tsx/esm/api";

register();
const { serveEnginePeerOnStdio } = await import("./stdio-peer.ts");
await serveEnginePeerOnStdio({});
