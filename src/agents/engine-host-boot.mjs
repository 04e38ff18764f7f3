// Entry point of an engine worker thread (see worker-engine.ts): registers the TypeScript loader
// inside the worker, then loads the engine host, which answers the main thread's calls.
import { register } from "tsx/esm/api";

register();
await import("../platform/install-base64.ts");
await import("./engine-host.ts");
