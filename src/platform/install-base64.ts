/**
 * Side-effect module: gives this realm Uint8Array's standard base64 methods before @scure/base (and so
 * nostr-tools' NIP-44) is first evaluated. Import it first in every entry point and worker.
 * See uint8array-base64.ts.
 */
import { installUint8ArrayBase64 } from "./uint8array-base64.ts";

installUint8ArrayBase64();
