import { describe, expect, it } from "vitest";
import { UsageError } from "../cli/flags.js";
import { listenEndpoint, parseConnectCommand, parseForward, parseReverse } from "./command.js";

describe("parseForward", () => {
  it("reads tcp and udp forwards, the listening host defaulting to 127.0.0.1", () => {
    expect(parseForward("tcp:5432=db.internal:5432")).toEqual({ protocol: "tcp", listen: { host: "127.0.0.1", port: 5432 }, target: { host: "db.internal", port: 5432 } });
    expect(parseForward("udp:0.0.0.0:5353=10.0.0.1:53")).toEqual({ protocol: "udp", listen: { host: "0.0.0.0", port: 5353 }, target: { host: "10.0.0.1", port: 53 } });
    expect(parseForward("tcp:[::1]:8080=[fd00::1]:80")).toEqual({ protocol: "tcp", listen: { host: "::1", port: 8080 }, target: { host: "fd00::1", port: 80 } });
  });

  it("rejects malformed forwards with a UsageError naming the flag", () => {
    for (const bad of ["tcp:80", "sctp:80=a:1", "tcp:host.name:80=a:1", "tcp:80=a", "tcp:80=a:0", "tcp:70000=a:1", "tcp:::1:80=a:1", "tcp:[10.0.0.1]:80=a:1", "udp:=a:1", "tcp:80=a:1=b"]) {
      expect(() => parseForward(bad)).toThrow(UsageError);
      expect(() => parseForward(bad)).toThrow(/^--forward /);
    }
  });

  it("takes port 0 (a free port) for listening", () => {
    expect(listenEndpoint("0")).toEqual({ host: "127.0.0.1", port: 0 });
  });
});

describe("parseReverse", () => {
  it("reads tcp and udp reverse forwards to a local IP or name", () => {
    expect(parseReverse("tcp:80=127.0.0.1:8080")).toEqual({ protocol: "tcp", port: 80, target: { host: "127.0.0.1", port: 8080 } });
    expect(parseReverse("udp:53=localhost:5353")).toEqual({ protocol: "udp", port: 53, target: { host: "localhost", port: 5353 } });
    expect(parseReverse("tcp:443=[::1]:8443")).toEqual({ protocol: "tcp", port: 443, target: { host: "::1", port: 8443 } });
  });

  it("rejects malformed ones with a UsageError naming the flag", () => {
    for (const bad of ["tcp:80", "tcp:0=a:1", "tcp:70000=a:1", "tcp:1.2.3.4:80=a:1", "tcp:80=a", "tcp:80=a:0", "icmp:80=a:1", "tcp:=a:1"]) {
      expect(() => parseReverse(bad)).toThrow(UsageError);
      expect(() => parseReverse(bad)).toThrow(/^--reverse /);
    }
  });
});

describe("parseConnectCommand", () => {
  it("needs exactly one CONFIG and keeps every --forward in order", () => {
    expect(() => parseConnectCommand([])).toThrow(/expected a CONFIG file/);
    expect(() => parseConnectCommand(["a.conf", "b.conf"])).toThrow(/unexpected argument "b.conf"/);
    const command = parseConnectCommand(["wg0.conf", "--forward", "tcp:1=a:1", "--forward=udp:2=b:2", "--json"]);
    expect(command).toMatchObject({ command: "connect", config: "wg0.conf", json: true });
    expect(command.command === "connect" && command.forwards.map((forward) => forward.listen.port)).toEqual([1, 2]);
  });

  it("gives help, and rejects unknown flags", () => {
    expect(parseConnectCommand(["--help"]).command).toBe("help");
    expect(() => parseConnectCommand(["wg0.conf", "--listen", "1"])).toThrow(/unknown option --listen/);
    expect(() => parseConnectCommand(["wg0.conf", "--handshake-timeout", "0"])).toThrow(/--handshake-timeout/);
    expect(() => parseConnectCommand(["wg0.conf", "--threads", "2"])).toThrow(/^--threads: expected an integer from 0 to 1, got "2"$/);
    expect(parseConnectCommand(["wg0.conf", "--threads", "1"])).toMatchObject({ threads: 1 });
    expect(parseConnectCommand(["wg0.conf", "--quiet"])).toMatchObject({ quiet: true, json: false });
    expect(() => parseConnectCommand(["wg0.conf", "--quiet", "--json"])).toThrow(/^--quiet and --json: /);
  });

  it("takes everything after the first -- as the COMMAND to run, its own flags and -- included", () => {
    expect(parseConnectCommand(["-", "--socks5", "0", "--", "curl", "--help", "--", "x"])).toMatchObject({ config: "-", socks5: { listen: { port: 0 } }, exec: ["curl", "--help", "--", "x"] });
    expect(parseConnectCommand(["wg0.conf"])).not.toHaveProperty("exec");
    expect(() => parseConnectCommand(["wg0.conf", "--"])).toThrow(/^connect: expected a COMMAND after --$/);
    expect(() => parseConnectCommand(["--", "sh"])).toThrow(/expected a CONFIG file/);
  });

  it("keeps every --reverse, and rejects one tunnel port given twice for the same protocol", () => {
    const command = parseConnectCommand(["wg0.conf", "--reverse", "tcp:80=127.0.0.1:8080", "--reverse", "udp:80=127.0.0.1:8080"]);
    expect(command.command === "connect" && command.reverses.map((reverse) => reverse.protocol)).toEqual(["tcp", "udp"]);
    expect(() => parseConnectCommand(["wg0.conf", "--reverse", "tcp:80=127.0.0.1:1", "--reverse", "tcp:80=127.0.0.1:2"])).toThrow(/given twice/);
  });
});
