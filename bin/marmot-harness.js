#!/usr/bin/env node
// Entry point: registers the TypeScript loader, then runs the CLI.
import { register } from "tsx/esm/api";

register();
// Before anything loads @scure/base (nostr-tools' NIP-44): see src/platform/uint8array-base64.ts.
await import("../src/platform/install-base64.ts");
const { main } = await import("../src/cli/main.ts");
process.exitCode = await main(process.argv);
