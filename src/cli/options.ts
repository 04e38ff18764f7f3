/**
 * Option parsers shared by CLI verbs (commander argParsers): bad values become a typed
 * CliOptionError (code CLI_BAD_OPTION) that names the option and the value.
 */
import { HarnessError } from "../errors.ts";

export class CliOptionError extends HarnessError {}

/** An integer option of at least `min` (default 0). */
export function intOption(name: string, min = 0): (v: string) => number {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isInteger(n) || n < min) throw new CliOptionError("CLI_BAD_OPTION", `--${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`, { option: name, value: v });
    return n;
  };
}
