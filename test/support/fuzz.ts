// Seeded, deterministic property tests for the parsers that read hostile or user-supplied
// input: a small PRNG (mulberry32), byte and text mutators over valid samples, and a runner
// that names the seed and case of a failure so it can be replayed:
//
//   FUZZ_SEED=1234 npx vitest run ts/connect/socks5-wire.fuzz.test.ts      (every case, another seed)
//   FUZZ_SEED=1234 FUZZ_CASE=17 npx vitest run …                          (one case of it)
//
// No dependency: the same file runs under vitest, Deno (deno.json maps "vitest") and Bun.

/** mulberry32: a 32-bit state PRNG, good enough to spread test cases, and reproducible. */
export class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  /** A uint32. */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** An integer in 0..n-1. */
  int(n: number): number {
    return n <= 0 ? 0 : Math.floor((this.next() / 0x1_0000_0000) * n);
  }
  /** An integer in min..max. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }
  chance(p: number): boolean {
    return this.next() / 0x1_0000_0000 < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.next() & 0xff;
    return out;
  }
  /** A string of `n` characters drawn from `alphabet`. */
  text(n: number, alphabet: string): string {
    let out = "";
    for (let i = 0; i < n; i++) out += alphabet[this.int(alphabet.length)];
    return out;
  }
}

/** Byte values that find off-by-ones in length fields and type switches. */
const INTERESTING = [0, 1, 2, 3, 4, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xfe, 0xff];

/** One to four random mutations of `sample` (never changes it): bit flips, byte changes, truncation, duplicated or inserted regions, random bytes. */
export function mutateBytes(rng: Rng, sample: Uint8Array): Uint8Array {
  let bytes: Uint8Array = sample.slice();
  const rounds = rng.range(1, 4);
  for (let round = 0; round < rounds; round++) {
    const at = rng.int(bytes.length + 1);
    switch (rng.int(8)) {
      case 0: // flip a bit
        if (bytes.length) {
          const i = rng.int(bytes.length);
          bytes[i] = bytes[i]! ^ (1 << rng.int(8));
        }
        break;
      case 1: // a random byte
        if (bytes.length) bytes[rng.int(bytes.length)] = rng.next() & 0xff;
        break;
      case 2: // an interesting byte (lengths, types)
        if (bytes.length) bytes[rng.int(bytes.length)] = rng.pick(INTERESTING);
        break;
      case 3: // cut short
        bytes = bytes.slice(0, at);
        break;
      case 4: {
        // a region repeated
        const length = rng.int(Math.min(32, bytes.length - at) + 1);
        bytes = concat(bytes.subarray(0, at + length), bytes.subarray(at, at + length), bytes.subarray(at + length));
        break;
      }
      case 5: // random bytes inserted
        bytes = concat(bytes.subarray(0, at), rng.bytes(rng.int(16) + 1), bytes.subarray(at));
        break;
      case 6: // a region removed
        bytes = concat(bytes.subarray(0, at), bytes.subarray(at + rng.int(16) + 1));
        break;
      default: {
        // a random 16-bit length field somewhere
        if (bytes.length >= 2) {
          const i = rng.int(bytes.length - 1);
          const value = rng.chance(0.5) ? rng.int(bytes.length + 8) : rng.next() & 0xffff;
          bytes[i] = value >> 8;
          bytes[i + 1] = value & 0xff;
        }
      }
    }
  }
  return bytes;
}

/** One to four random mutations of `sample` at the character level, inserting from `alphabet`. */
export function mutateText(rng: Rng, sample: string, alphabet: string): string {
  let text = sample;
  const rounds = rng.range(1, 4);
  for (let round = 0; round < rounds; round++) {
    const at = rng.int(text.length + 1);
    switch (rng.int(6)) {
      case 0: // a character replaced
        text = text.slice(0, at) + rng.text(1, alphabet) + text.slice(at + 1);
        break;
      case 1: // characters inserted
        text = text.slice(0, at) + rng.text(rng.range(1, 8), alphabet) + text.slice(at);
        break;
      case 2: // a region removed
        text = text.slice(0, at) + text.slice(at + rng.range(1, 16));
        break;
      case 3: {
        // a region repeated
        const length = rng.range(1, 40);
        text = text.slice(0, at + length) + text.slice(at, at + length) + text.slice(at + length);
        break;
      }
      case 4: // cut short
        text = text.slice(0, at);
        break;
      default: // a character's case flipped
        if (at < text.length) {
          const char = text[at]!;
          text = text.slice(0, at) + (char === char.toUpperCase() ? char.toLowerCase() : char.toUpperCase()) + text.slice(at + 1);
        }
    }
  }
  return text;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env ?? {};

/**
 * Runs `property` on `cases` cases, each with its own Rng derived from the seed and the case
 * number. The seed is `seed` unless FUZZ_SEED is set; FUZZ_CASE runs one case. A failure is
 * rethrown with the seed, the case and what `describe` made of its input.
 */
export function fuzz(name: string, options: { seed: number; cases: number }, property: (rng: Rng, index: number) => void): void {
  const seed = env.FUZZ_SEED === undefined ? options.seed : Number(env.FUZZ_SEED);
  const only = env.FUZZ_CASE === undefined ? undefined : Number(env.FUZZ_CASE);
  for (let index = only ?? 0; index < (only === undefined ? options.cases : only + 1); index++) {
    const rng = new Rng(caseSeed(seed, index));
    try {
      property(rng, index);
    } catch (error) {
      const replay = `FUZZ_SEED=${seed} FUZZ_CASE=${index}`;
      const failure = new Error(`${name}: case ${index} of seed ${seed} failed (replay: ${replay}): ${(error as Error)?.message ?? String(error)}`, { cause: error });
      throw failure;
    }
  }
}

function caseSeed(seed: number, index: number): number {
  return (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(index + 1, 0xc2b2ae35)) >>> 0;
}

/** An input as hex, for failure messages (cut at 200 bytes). */
export function hex(bytes: Uint8Array): string {
  const shown = [...bytes.subarray(0, 200)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  return bytes.length > 200 ? `${shown}… (${bytes.length} bytes)` : shown;
}

/**
 * Calls `parse`; a throw must be an instance of `allowed` (and pass `check`), anything else
 * (TypeError, RangeError, …) fails with `input` in the message. Returns the result, or
 * `THREW` when it threw as allowed.
 */
export function parsesOrRejects<T>(parse: () => T, allowed: abstract new (...args: never[]) => Error, input: Input, check?: (error: Error) => void): T | typeof THREW {
  try {
    return parse();
  } catch (error) {
    if (!(error instanceof allowed)) {
      throw new Error(`input ${shown(input)}: threw ${(error as Error)?.name ?? typeof error} (${(error as Error)?.message ?? String(error)}), not a ${allowed.name}`, { cause: error });
    }
    try {
      check?.(error);
    } catch (problem) {
      const why = (problem as Error).message.startsWith("input ") ? (problem as Error).message : `input ${shown(input)}: ${(problem as Error).message}`;
      throw new Error(`${allowed.name} ${JSON.stringify(error.message)}: ${why}`, { cause: problem });
    }
    return THREW;
  }
}

export const THREW: unique symbol = Symbol("threw");

/** Fails with `input` in the message unless `condition`. */
export function check(condition: unknown, what: string, input: Input): asserts condition {
  if (!condition) throw new Error(`input ${shown(input)}: ${what}`);
}

/** The input of a case, for failure messages: text, or a function making it (only called on failure). */
export type Input = string | (() => string);
const shown = (input: Input) => (typeof input === "string" ? input : input());
