/**
 * A few ts-mls 2.0.0-rc.10 functions that its package `exports` map does not expose: the sender
 * data of a PrivateMessage (needed to learn the MLS sender of an application message, which
 * `processMessage` does not return), the ratchet tree codec (for the experimental out-of-band
 * tree) and the secret tree and past-epoch codecs (to persist the per-message key ratchet and the
 * retained epochs without rewriting the whole group state). They are loaded from the installed package's own files by URL, never reimplemented.
 */
import { createRequire } from "node:module";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import type { CiphersuiteImpl, Decoder, Encoder, EpochReceiverData, PrivateMessage, RatchetTree, SecretTree } from "ts-mls";

export interface SenderData {
  leafIndex: number;
  generation: number;
  reuseGuard: Uint8Array;
}

/** What ts-mls's unprotectPrivateMessage returns (the verified content and the ratcheted secret tree). */
export interface UnprotectedPrivateMessage {
  tree: SecretTree;
  content: { content: { contentType: number; sender: { senderType: number; leafIndex?: number }; applicationData?: Uint8Array } };
  consumed: Uint8Array[];
}

interface Internals {
  decryptSenderData(msg: PrivateMessage, senderDataSecret: Uint8Array, cs: CiphersuiteImpl): Promise<SenderData | undefined>;
  /** Decrypts and verifies a PrivateMessage (sender data, ratchet, AEAD, signature), as processMessage does inside. */
  unprotectPrivateMessage(
    senderDataSecret: Uint8Array,
    msg: PrivateMessage,
    secretTree: SecretTree,
    ratchetTree: RatchetTree,
    groupContext: unknown,
    keyRetentionConfig: unknown,
    cs: CiphersuiteImpl,
  ): Promise<UnprotectedPrivateMessage>;
  ratchetTreeEncoder: Encoder<RatchetTree>;
  ratchetTreeDecoder: Decoder<RatchetTree>;
  secretTreeEncoder: Encoder<SecretTree>;
  secretTreeDecoder: Decoder<SecretTree>;
  epochReceiverDataEncoder: Encoder<EpochReceiverData>;
  epochReceiverDataDecoder: Decoder<EpochReceiverData>;
}

let loaded: Promise<Internals> | undefined;

export function tsMlsInternals(): Promise<Internals> {
  loaded ??= (async () => {
    const require = createRequire(import.meta.url);
    const dir = path.dirname(require.resolve("ts-mls"));
    const url = (f: string): string => pathToFileURL(path.join(dir, f)).href;
    const pm = (await import(url("privateMessage.js"))) as Pick<Internals, "decryptSenderData">;
    const rt = (await import(url("ratchetTree.js"))) as Pick<Internals, "ratchetTreeEncoder" | "ratchetTreeDecoder">;
    const st = (await import(url("secretTree.js"))) as Pick<Internals, "secretTreeEncoder" | "secretTreeDecoder">;
    const erd = (await import(url("epochReceiverData.js"))) as Pick<Internals, "epochReceiverDataEncoder" | "epochReceiverDataDecoder">;
    const mp = (await import(url("messageProtection.js"))) as Pick<Internals, "unprotectPrivateMessage">;
    if (
      typeof pm.decryptSenderData !== "function" ||
      typeof mp.unprotectPrivateMessage !== "function" ||
      typeof rt.ratchetTreeEncoder !== "function" ||
      typeof rt.ratchetTreeDecoder !== "function" ||
      typeof st.secretTreeEncoder !== "function" ||
      typeof st.secretTreeDecoder !== "function" ||
      typeof erd.epochReceiverDataEncoder !== "function" ||
      typeof erd.epochReceiverDataDecoder !== "function"
    ) {
      throw new Error("installed ts-mls does not have the expected internal modules (privateMessage.js, messageProtection.js, ratchetTree.js, secretTree.js, epochReceiverData.js)");
    }
    return {
      decryptSenderData: pm.decryptSenderData,
      unprotectPrivateMessage: mp.unprotectPrivateMessage,
      ratchetTreeEncoder: rt.ratchetTreeEncoder,
      ratchetTreeDecoder: rt.ratchetTreeDecoder,
      secretTreeEncoder: st.secretTreeEncoder,
      secretTreeDecoder: st.secretTreeDecoder,
      epochReceiverDataEncoder: erd.epochReceiverDataEncoder,
      epochReceiverDataDecoder: erd.epochReceiverDataDecoder,
    };
  })();
  return loaded;
}
