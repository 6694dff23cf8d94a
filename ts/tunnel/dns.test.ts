// The resolver's handling of each server, with a transport played by the test: which
// servers it asks, in which order, and what a server's ICMP error does.

import { describe, expect, it } from "vitest";
import type { Endpoint } from "../ip.js";
import { DnsResolver, type DnsTransport } from "./dns.js";
import type { UdpListener } from "./udp.js";

/** What each server does with a question: answer with an address, or have its side send an ICMP error. */
type Behaviour = { answer: string } | { unreachable: "ECONNREFUSED" | "EHOSTUNREACH" | "ENETUNREACH"; about?: Endpoint };

/** A transport where `servers[host]` decides what a question to host:53 gets; `asked` lists the questions' servers in order. */
function network(servers: Record<string, Behaviour>): { transport: DnsTransport; asked: string[] } {
  const listeners = new Map<string, UdpListener>();
  const asked: string[] = [];
  const transport: DnsTransport = {
    localAddress: (family) => (family === 4 ? "10.0.0.2" : undefined),
    listenUdp: (local, listener) => {
      listeners.set(`${local.port}`, listener);
      return () => listeners.delete(`${local.port}`);
    },
    sendUdp: (query, from, to) => {
      asked.push(to.host);
      const listener = listeners.get(`${from.port}`)!;
      const behaviour = servers[to.host];
      if (!behaviour) return; // silent
      queueMicrotask(() => {
        if ("answer" in behaviour) listener.message(answerTo(query, behaviour.answer), to);
        else listener.unreachable?.(behaviour.about ?? to, behaviour.unreachable);
      });
    },
    connectTcp: () => Promise.reject(new Error("no TCP in this test")),
  };
  return { transport, asked };
}

/** An answer to an A question: the question with one A record of `address`, TTL 60. */
function answerTo(query: Uint8Array, address: string): Uint8Array {
  const header = [query[0]!, query[1]!, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
  const record = [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...address.split(".").map(Number)];
  return new Uint8Array([...header, ...query.subarray(12), ...record]);
}

describe("DnsResolver and its servers", () => {
  it("fails a server whose side says nothing listens on port 53 at once, with its code, and asks it no second time", async () => {
    for (const code of ["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH"] as const) {
      const { transport, asked } = network({ "10.0.0.53": { unreachable: code } });
      const failure = await new DnsResolver(["10.0.0.53"], transport).resolve("db.test", { family: 4 }).catch((error: unknown) => error);
      expect(failure).toMatchObject({ code, syscall: "query", address: "10.0.0.53" });
      // Without the ICMP error: asked twice, 2 s apart, then ETIMEDOUT.
      expect(asked).toEqual(["10.0.0.53"]);
    }
  });

  it("goes on to the next server at once when one is unreachable", async () => {
    const { transport, asked } = network({ "10.0.0.53": { unreachable: "ECONNREFUSED" }, "10.0.0.1": { answer: "10.0.0.7" } });
    expect(await new DnsResolver(["10.0.0.53", "10.0.0.1"], transport).resolve("db.test", { family: 4 })).toEqual(["10.0.0.7"]);
    expect(asked).toEqual(["10.0.0.53", "10.0.0.1"]);
  });

  it("ignores an ICMP error about a datagram to another address or port", async () => {
    for (const about of [{ host: "10.0.0.9", port: 53 }, { host: "10.0.0.1", port: 5353 }]) {
      const { transport } = network({ "10.0.0.1": { unreachable: "ECONNREFUSED", about } });
      const failure = await new DnsResolver(["10.0.0.1"], transport).resolve("db.test", { family: 4 }).catch((error: unknown) => error);
      expect(failure).toMatchObject({ code: "ETIMEDOUT" }); // as if silent: the error was not about our question
    }
  }, 15_000);
});
