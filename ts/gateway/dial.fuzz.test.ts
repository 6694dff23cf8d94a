// Property tests for parseProxy (`serve --via URL`): any text is a proxy to dial or an Error
// that quotes it and says what is wrong (the CLI shows it after "--via: "), never a URIError
// or TypeError; a URL written from any login, host and port reads back as written.
// Seeded and deterministic: a failure prints the seed and case to replay (test/support/fuzz.ts).

import { describe, expect, it } from "vitest";
import { check, fuzz, mutateText, type Rng } from "../../test/support/fuzz.js";
import { formatIp } from "../ip.js";
import { parseProxy, type UpstreamProxy } from "./dial.js";

const ALPHABET = "socks5http:/@[]%?#.-_019abcé :\t";

function randomProxyUrl(rng: Rng, edgy = false): { text: string; expected: UpstreamProxy } {
  const protocol = rng.pick(["socks5", "http"] as const);
  const v6 = rng.chance(0.3);
  const host = rng.chance(0.3) ? `proxy${rng.int(10)}.test` : formatIp(rng.bytes(v6 ? 16 : 4));
  const port = edgy && rng.chance(0.2) ? rng.pick([0, 65536]) : rng.range(1, 65535);
  const expected: UpstreamProxy = { protocol, host, port };
  let login = "";
  if (rng.chance(0.5)) {
    expected.username = rng.text(rng.range(1, 10), "ab:@%é/ 1");
    expected.password = rng.text(rng.range(1, 10), "ab:@%é/ 1");
    login = `${encodeURIComponent(expected.username)}:${encodeURIComponent(expected.password)}@`;
    if (edgy && rng.chance(0.3)) login = `${expected.username}:${expected.password}@`; // written unencoded
  }
  const hostText = host.includes(":") ? `[${host}]` : host;
  return { text: `${protocol}://${login}${hostText}:${port}`, expected };
}

function parseChecked(text: string): UpstreamProxy | undefined {
  try {
    const proxy = parseProxy(text);
    check(proxy.protocol === "socks5" || proxy.protocol === "http", `protocol ${proxy.protocol}`, text);
    check(proxy.host.length > 0, "a host", text);
    check(Number.isInteger(proxy.port) && proxy.port >= 1 && proxy.port <= 65535, `port ${proxy.port} is one to dial`, text);
    return proxy;
  } catch (error) {
    if ((error as Error).message?.startsWith("input ")) throw error;
    check(error instanceof Error && error.constructor === Error, `threw ${(error as Error).name}: ${(error as Error).message}, not an Error saying what is wrong`, JSON.stringify(text));
    check(error.message.includes(JSON.stringify(text)), `the message quotes the URL: ${error.message}`, JSON.stringify(text));
    return undefined;
  }
}

describe("serve --via: proxy URLs as users type them", () => {
  it("a proxy to dial, or an Error quoting the URL, for damaged and random URLs", () => {
    fuzz("parseProxy", { seed: 0x71a, cases: 3000 }, (rng) => {
      const text = rng.chance(0.85) ? mutateText(rng, randomProxyUrl(rng, true).text, ALPHABET) : rng.text(rng.int(60), ALPHABET);
      parseChecked(text);
    });
  });

  it("round trip: any login (percent-encoded), host and port read back as written", () => {
    fuzz("parseProxy round trip", { seed: 0x2710, cases: 2000 }, (rng) => {
      const { text, expected } = randomProxyUrl(rng);
      const proxy = parseChecked(text);
      check(JSON.stringify(proxy) === JSON.stringify(expected), `parsed ${JSON.stringify(proxy)}, not ${JSON.stringify(expected)}`, text);
    });
  });

  it("a login with a % that is no escape, or to port 0, is an Error saying so (a URIError and a port-0 proxy before)", () => {
    // Found by the first property: "socks5://u:100%@h:1080" threw URIError "URI malformed"
    // (the CLI said "--via: URI malformed"), and socks5://h:0 gave a proxy on port 0.
    for (const text of ["socks5://u:100%@proxy.test:1080", "socks5://u%zz:p@proxy.test:1080", "http://u:%E9@proxy.test:3128", "socks5://proxy.test:0"]) {
      expect(() => parseProxy(text)).toThrow(expect.objectContaining({ name: "Error", message: expect.stringContaining(JSON.stringify(text)) }));
    }
  });
});
