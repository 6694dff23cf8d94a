// Command-line flags shared by every wg-netstack command (serve, peer, connect): one
// parser, one error type, so each command reads and rejects flags the same way.

import { wholeNumber } from "../config.js";
import { PcapWriter } from "../gateway/pcap.js";

/** A bad command line: the message is the one line the user sees (exit code 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** What a command accepts: its flags, which of them take no value, and which may be repeated. */
export interface FlagSpec {
  known: string[];
  boolean: Set<string>;
  repeatable?: Set<string>;
}

export interface ParsedFlags {
  /** The last value of each flag given ("" for a boolean one). */
  flags: Record<string, string>;
  /** Every value of a repeatable flag, in order. */
  repeated: Record<string, string[]>;
  positionals: string[];
}

/** `--name value`, `--name=value`, boolean `--name`; `-h` is `--help`. Throws a UsageError. */
export function parseFlags(words: string[], spec: FlagSpec): ParsedFlags {
  const flags: Record<string, string> = {};
  const repeated: Record<string, string[]> = {};
  const positionals: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === "-h") {
      flags.help = "";
      continue;
    }
    if (!word.startsWith("--")) {
      if (word.startsWith("-") && word !== "-") throw new UsageError(`unknown option ${word} (see --help)`);
      positionals.push(word);
      continue;
    }
    const equals = word.indexOf("=");
    const name = word.slice(2, equals < 0 ? undefined : equals);
    if (!spec.known.includes(name)) throw new UsageError(`unknown option --${name} (see --help)`);
    if (spec.boolean.has(name)) {
      if (equals >= 0) throw new UsageError(`--${name} takes no value`);
      flags[name] = "";
      continue;
    }
    const value = equals >= 0 ? word.slice(equals + 1) : words[++i];
    if (value === undefined || value === "") throw new UsageError(`--${name} needs a value (see --help)`);
    flags[name] = value;
    if (spec.repeatable?.has(name)) (repeated[name] ??= []).push(value);
  }
  return { flags, repeated, positionals };
}

/** A whole number from `min` to `max`, or a UsageError naming the flag. */
export function integer(text: string, flag: string, min: number, max: number): number {
  const value = wholeNumber(text, min, max);
  if (value === undefined) throw new UsageError(`${flag}: expected an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
  return value;
}

/** `--threads N`: the engine's threads, as `startServer`'s `threads` (0 or 1); a UsageError otherwise. */
export function threadsFlag(text: string): 0 | 1 {
  return integer(text, "--threads", 0, 1) as 0 | 1;
}

/** The file `--pcap FILE` names, opened for writing (none without the flag); a UsageError if it cannot be. */
export async function openPcapFlag(path: string | undefined): Promise<PcapWriter | undefined> {
  if (path === undefined) return undefined;
  try {
    return await PcapWriter.open(path);
  } catch (error) {
    throw new UsageError(`--pcap: cannot write ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}
