// Re-exports for tests that forge group-data changes.
export { encodeGroupData } from "../../src/engine/mip01-group-data.ts";
export const EXT = 0xf2ee;
