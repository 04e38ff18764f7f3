import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Uint8Array base64 built-ins before any test file loads nostr-tools, as in every entry point.
    setupFiles: ["src/platform/install-base64.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    reporters: process.env.CI ? ["default", "junit"] : ["default"],
    outputFile: { junit: "reports/ci/junit.xml" },
  },
});
