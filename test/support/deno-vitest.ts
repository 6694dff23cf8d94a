// The part of vitest's API our portable tests use, on `Deno.test` and Jest's `expect`,
// so the same test files run under Deno (deno.json maps "vitest" here; Bun maps it to
// `bun:test` by itself). Suites run in file order; hooks run as vitest runs them.

import { expect } from "expect";

export { expect };

type Hook = () => unknown;
interface Suite {
  name: string;
  skip: boolean;
  parent: Suite | undefined;
  beforeAll: Hook[];
  afterAll: Hook[];
  beforeEach: Hook[];
  afterEach: Hook[];
  /** Tests registered below this suite (deep), and how many have finished. */
  total: number;
  done: number;
  started: boolean;
}

declare const Deno: {
  test(options: { name: string; ignore: boolean; fn: () => Promise<void>; sanitizeOps: boolean; sanitizeResources: boolean; sanitizeExit: boolean }): void;
};

const root: Suite = newSuite("", false, undefined);
let current = root;

function newSuite(name: string, skip: boolean, parent: Suite | undefined): Suite {
  return { name, skip, parent, beforeAll: [], afterAll: [], beforeEach: [], afterEach: [], total: 0, done: 0, started: false };
}

function chain(suite: Suite): Suite[] {
  const suites: Suite[] = [];
  for (let s: Suite | undefined = suite; s; s = s.parent) suites.unshift(s);
  return suites;
}

export function describe(name: string, body: () => void): void {
  const suite = newSuite(name, current.skip, current);
  current = suite;
  try {
    body();
  } finally {
    current = suite.parent!;
  }
}
describe.skipIf = (condition: unknown) => (name: string, body: () => void) => {
  const before = current.skip;
  current.skip = before || Boolean(condition);
  try {
    describe(name, body);
  } finally {
    current.skip = before;
  }
};

export function it(name: string, fn: () => unknown, _timeout?: number): void {
  register(name, fn, false);
}
it.skipIf = (condition: unknown) => (name: string, fn: () => unknown, _timeout?: number) => register(name, fn, Boolean(condition));
export const test = it;

function register(name: string, fn: () => unknown, skip: boolean): void {
  const suite = current;
  const suites = chain(suite);
  const ignore = skip || suite.skip;
  if (!ignore) for (const s of suites) s.total++;
  Deno.test({
    name: [...suites.map((s) => s.name).filter(Boolean), name].join(" > "),
    ignore,
    sanitizeOps: false,
    sanitizeResources: false,
    sanitizeExit: false,
    fn: async () => {
      for (const s of suites) {
        if (!s.started) {
          s.started = true;
          for (const hook of s.beforeAll) await hook();
        }
      }
      try {
        for (const s of suites) for (const hook of s.beforeEach) await hook();
        await fn();
      } finally {
        for (const s of [...suites].reverse()) for (const hook of s.afterEach) await hook();
        for (const s of [...suites].reverse()) {
          if (++s.done === s.total) for (const hook of s.afterAll) await hook();
        }
      }
    },
  });
}

// Timeouts are accepted for vitest compatibility; Deno runs without them.
export const beforeAll = (hook: Hook, _timeout?: number) => void current.beforeAll.push(hook);
export const afterAll = (hook: Hook, _timeout?: number) => void current.afterAll.push(hook);
export const beforeEach = (hook: Hook, _timeout?: number) => void current.beforeEach.push(hook);
export const afterEach = (hook: Hook, _timeout?: number) => void current.afterEach.push(hook);
