// Property tests for the command lines (`wg-netstack connect …` and `serve`/`peer …`): any
// words a user types are a command or a UsageError (the one line printed, exit code 2),
// never another exception; what a command holds is in range (and --stdio alone); forwards, reverse forwards and
// proxy logins written from random values read back as written.
// Seeded and deterministic: a failure prints the seed and case to replay (test/support/fuzz.ts).

import { describe, it } from "vitest";
import { check, fuzz, mutateText, parsesOrRejects, type Rng, THREW } from "../../test/support/fuzz.js";
import { UsageError } from "../cli/flags.js";
import { parseCommand } from "../gateway/cli.js";
import { endpointText, formatIp, parseHostEndpoint } from "../ip.js";
import { parseConnectCommand, parseForward, parseProxyListen, parseReverse } from "./command.js";

const ALPHABET = "tcpudp:=[]@.,-019af/ ";
const okPort = (port: number, min: number) => Number.isInteger(port) && port >= min && port <= 65535;

function randomIp(rng: Rng): string {
  return formatIp(rng.bytes(rng.chance(0.6) ? 4 : 16));
}
const bracketed = (host: string) => (host.includes(":") ? `[${host}]` : host);

function randomForward(rng: Rng): string {
  const listen = rng.chance(0.5) ? `${bracketed(randomIp(rng))}:${rng.int(65536)}` : String(rng.int(65536));
  const target = `${rng.chance(0.5) ? bracketed(randomIp(rng)) : `host${rng.int(9)}.test`}:${rng.range(1, 65535)}`;
  return `${rng.pick(["tcp", "udp"])}:${listen}=${target}`;
}

/** A port as users type them: mostly valid, sometimes 0 or past 65535. */
function anyPort(rng: Rng): number {
  return rng.chance(0.7) ? rng.range(1, 65535) : rng.pick([0, 65535, 65536, 99999]);
}

/** A value for `flag`, valid or near it. */
function valueFor(rng: Rng, flag: string): string {
  const host = rng.chance(0.5) ? `${bracketed(randomIp(rng))}:` : "";
  switch (flag) {
    case "--forward":
      return rng.chance(0.5) ? randomForward(rng) : `${rng.pick(["tcp", "udp"])}:${host}${anyPort(rng)}=${rng.pick(["127.0.0.1", "h.test", "[::1]"])}:${anyPort(rng)}`;
    case "--reverse":
      return `${rng.pick(["tcp", "udp"])}:${anyPort(rng)}=${rng.pick(["127.0.0.1", "h.test", "[::1]"])}:${anyPort(rng)}`;
    case "--socks5":
    case "--http":
    case "--listen":
    case "--web":
      return `${rng.chance(0.3) ? "u:p@" : ""}${host}${anyPort(rng)}`;
    case "--via":
      return `${rng.pick(["socks5", "http"])}://${host || "127.0.0.1:"}${anyPort(rng)}`;
    case "--endpoint":
      return rng.chance(0.5) ? `${host}${anyPort(rng)}` : `${rng.pick(["vpn.example.com", "203.0.113.5", "[2001:db8::1]", "2001:db8::1", "my_host", "vpn.example.com."])}${rng.chance(0.5) ? `:${anyPort(rng)}` : ""}`;
    case "--dns-upstream":
      return `${host}${anyPort(rng)}`;
    case "--stdio":
      return `${rng.pick([bracketed(randomIp(rng)), "h.test", ""])}:${anyPort(rng)}`;
    default:
      return String(rng.pick([0, 1, 2, 1279, 1280, 3600, 3601, 65535, 65536, rng.int(70000)]));
  }
}

/** One or two words: a flag and its value (as --flag=value or two words), a file, or junk. */
function randomWords(rng: Rng): string[] {
  const flag = rng.pick(["--forward", "--reverse", "--socks5", "--http", "--stdio", "--handshake-timeout", "--threads", "--pcap", "--json", "--quiet", "--help", "-h", "--conf", "--peers", "--listen", "--endpoint", "--mtu", "--via", "--dns-upstream", "--max-flows", "--web", "--allow-loopback", "--nope", "-x", "-", "--"]);
  const value = valueFor(rng, flag);
  const words = rng.chance(0.1) ? [rng.pick(["wg0.conf", value])] : rng.chance(0.4) ? [`${flag}=${value}`] : rng.chance(0.8) ? [flag, value] : [flag];
  return rng.chance(0.2) ? words.map((word) => mutateText(rng, word, ALPHABET)) : words;
}

describe("command lines as users type them", () => {
  it("connect: a command or a UsageError for random words; ports and lists in range", () => {
    fuzz("parseConnectCommand", { seed: 0xc0c, cases: 3000 }, (rng) => {
      const words = [...(rng.chance(0.8) ? ["wg0.conf"] : []), ...Array.from({ length: rng.int(5) }, () => randomWords(rng)).flat()];
      const input = () => JSON.stringify(words);
      const command = parsesOrRejects(() => parseConnectCommand(words), UsageError, input);
      if (command === THREW || command.command === "help") return;
      for (const forward of command.forwards) check(okPort(forward.listen.port, 0) && okPort(forward.target.port, 1), `forward ${JSON.stringify(forward)}`, input);
      for (const reverse of command.reverses) check(okPort(reverse.port, 1) && okPort(reverse.target.port, 1), `reverse ${JSON.stringify(reverse)}`, input);
      for (const proxy of [command.socks5, command.http]) if (proxy) check(okPort(proxy.listen.port, 0), `proxy ${JSON.stringify(proxy)}`, input);
      if (command.handshakeTimeoutMs !== undefined) check(command.handshakeTimeoutMs >= 1000 && command.handshakeTimeoutMs <= 3_600_000, "handshake timeout", input);
      if (command.threads !== undefined) check(command.threads === 0 || command.threads === 1, "threads", input);
      if (command.stdio) {
        check(okPort(command.stdio.port, 1), `stdio ${JSON.stringify(command.stdio)}`, input);
        // The process is that one connection: nothing else may read stdin or write stdout.
        check(command.forwards.length + command.reverses.length === 0 && !command.socks5 && !command.http && !command.exec && command.config !== "-", "--stdio alone", input);
      }
      if (command.exec) check(command.exec.length > 0, "a COMMAND after --", input);
    });
  });

  it("serve and peer: a command or a UsageError for random words", () => {
    fuzz("parseCommand", { seed: 0x5e7e, cases: 3000 }, (rng) => {
      const words = [...(rng.chance(0.7) ? [rng.pick(["serve", "peer", "connect", "bogus"])] : []), ...(rng.chance(0.3) ? [rng.pick(["add", "remove", "list"])] : []), ...Array.from({ length: rng.int(5) }, () => randomWords(rng)).flat()];
      const input = () => JSON.stringify(words);
      const command = parsesOrRejects(() => parseCommand(words, { HOME: "/nonexistent" }), UsageError, input);
      if (command === THREW || command.command !== "serve") return;
      check(command.peers === undefined || (Number.isInteger(command.peers) && command.peers >= 0), "peers", input); // absent: peer1 on the first start only
      if (command.via) check(okPort(command.via.port, 1), `via ${JSON.stringify(command.via)}`, input);
      if (command.dnsUpstream) check(okPort(command.dnsUpstream.port, 1), "dns upstream", input);
      if (command.mtu !== undefined) check(command.mtu >= 1280 && command.mtu <= 65535, "mtu", input);
      for (const listen of [command.listen, command.web]) if (listen) check(okPort(listen.port, 0), `listen ${JSON.stringify(listen)}`, input);
      if (command.endpoint) {
        // What serve writes into every client config: clientConfig must take it.
        const { host, port = 51820 } = command.endpoint;
        check(okPort(port, 1) && parseHostEndpoint(endpointText({ host, port })) !== undefined, `endpoint ${JSON.stringify(command.endpoint)} is host:port for a client config`, input);
      }
    });
  });

  it("serve --endpoint: a host that is no IP or host name is a UsageError naming the flag", () => {
    // Found by the property above: "--endpoint --mtu" (or "my host", "my_host") was taken as
    // a host; serve then saved it to server.json and failed writing the client configs with
    // "endpoint: … is not host:port", naming no flag.
    for (const endpoint of ["--mtu", "my host", "my_host:51820", "a/b"]) {
      const error = parsesOrRejects(() => parseCommand(["serve", "--endpoint", endpoint], { HOME: "/nonexistent" }), UsageError, endpoint);
      check(error === THREW, "refused", endpoint);
    }
  });

  it("round trip: forwards, reverse forwards and proxy logins read back as written", () => {
    fuzz("connect round trip", { seed: 0x2f0, cases: 2000 }, (rng) => {
      const protocol = rng.pick(["tcp", "udp"] as const);
      const listenHost = randomIp(rng);
      const listenPort = rng.int(65536);
      const target = { host: rng.chance(0.5) ? randomIp(rng) : `host${rng.int(9)}.test`, port: rng.range(1, 65535) };
      const text = `${protocol}:${bracketed(listenHost)}:${listenPort}=${bracketed(target.host)}:${target.port}`;
      const forward = parseForward(text);
      check(JSON.stringify(forward) === JSON.stringify({ protocol, listen: { host: listenHost, port: listenPort }, target }), JSON.stringify(forward), text);
      const reverseText = `${protocol}:${target.port}=${bracketed(target.host)}:${listenPort || 1}`;
      const reverse = parseReverse(reverseText);
      check(JSON.stringify(reverse) === JSON.stringify({ protocol, port: target.port, target: { host: target.host, port: listenPort || 1 } }), JSON.stringify(reverse), reverseText);
      const user = rng.text(rng.range(1, 30), "abc@XYZ019é"); // the first ":" ends the user name
      const pass = rng.text(rng.range(1, 30), "abc:@XYZ019é");
      const login = `${user}:${pass}@${bracketed(listenHost)}:${listenPort}`;
      const proxy = parseProxyListen(login, "--socks5");
      check(proxy.credentials?.user === user && proxy.credentials.pass === pass && proxy.listen.host === listenHost && proxy.listen.port === listenPort, JSON.stringify(proxy), login);
    });
  });
});
