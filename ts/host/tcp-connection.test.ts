import { describe, expect, it } from "vitest";
import { startLoopbackPair } from "../../test/support/loopback-stacks.js";
import { closeError, ConnectionError } from "./tcp-connection.js";

describe("closeError", () => {
  it("names the ICMP that ended a connect by the remote's family: ICMPv6 for an IPv6 one (RFC 4443 3.1)", () => {
    const v4 = { host: "10.0.0.67", port: 80 };
    const v6 = { host: "fd00::67", port: 80 };
    expect(closeError("host-unreachable", v4)).toEqual(new ConnectionError("no route to host (ICMP host unreachable)", "EHOSTUNREACH"));
    expect(closeError("net-unreachable", v4)).toEqual(new ConnectionError("network is unreachable (ICMP net unreachable)", "ENETUNREACH"));
    expect(closeError("host-unreachable", v6)).toEqual(new ConnectionError("no route to host (ICMPv6 destination unreachable)", "EHOSTUNREACH"));
    expect(closeError("net-unreachable", v6)).toEqual(new ConnectionError("network is unreachable (ICMPv6 no route to destination)", "ENETUNREACH"));
    for (const reason of ["host-unreachable", "net-unreachable"] as const) {
      expect(closeError(reason, v6)!.message).not.toMatch(/ICMP /);
      expect(closeError(reason, v6)).toMatchObject({ name: "ConnectionError", code: closeError(reason, v4)!.code });
    }
  });

  it("gives the other ends their Node codes, whatever the family, and a clean close no error", () => {
    for (const remote of [{ host: "10.0.0.1", port: 7 }, { host: "fd00::1", port: 7 }]) {
      expect(closeError("closed", remote)).toBeUndefined();
      expect(closeError("reset", remote)).toMatchObject({ code: "ECONNRESET", message: "connection reset by peer" });
      expect(closeError("refused", remote)).toMatchObject({ code: "ECONNREFUSED", message: "connection refused" });
      expect(closeError("aborted", remote)).toMatchObject({ code: "ECONNABORTED", message: "connection aborted" });
      expect(closeError("timeout", remote)).toMatchObject({ code: "ETIMEDOUT", message: "connection timed out" });
    }
  });
});

describe("a connect an ICMP error ends", () => {
  it("fails with the words of its family's ICMP (server.connect over a loopback pair)", async () => {
    const pair = await startLoopbackPair({ onTcp: (connection) => connection.refuse("unreachable") });
    try {
      const failure = (host: string) => pair.client.connect({ host, port: 80 }).catch((error: unknown) => error);
      expect(await failure("192.0.2.1")).toMatchObject({ code: "EHOSTUNREACH", message: "no route to host (ICMP host unreachable)" });
      expect(await failure("2001:db8::1")).toMatchObject({ code: "EHOSTUNREACH", message: "no route to host (ICMPv6 destination unreachable)" });
    } finally {
      await pair.close();
    }
  });
});
