import net from "node:net";
import tls from "node:tls";
import { describe, expect, it } from "vitest";
import { dnsQuestion, httpHost, tlsServerName } from "./sniff.js";

/** The ClientHello node:tls really sends for `servername`, caught by a plain TCP server on loopback. */
async function clientHello(servername: string): Promise<Uint8Array> {
  let resolveHello!: (bytes: Uint8Array) => void;
  const hello = new Promise<Uint8Array>((resolve) => (resolveHello = resolve));
  const server = net.createServer((socket) => {
    socket.once("data", (data) => {
      resolveHello(new Uint8Array(data));
      socket.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const client = tls.connect({ host: "127.0.0.1", port: (server.address() as net.AddressInfo).port, servername });
  client.on("error", () => {});
  try {
    return await hello;
  } finally {
    client.destroy();
    server.close();
  }
}

const bytes = (text: string) => new TextEncoder().encode(text);

/** A DNS query for `name` (type `type`), as a stub resolver sends it. */
function dnsQuery(name: string, type: number): Uint8Array {
  const labels = name.split(".").flatMap((label) => [label.length, ...bytes(label)]);
  return new Uint8Array([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, type >> 8, type & 255, 0, 1]);
}

/** Every prefix of `data` and many random corruptions of it: none may throw. */
function mangled(data: Uint8Array): Uint8Array[] {
  const cases: Uint8Array[] = [];
  for (let length = 0; length < data.length; length++) cases.push(data.subarray(0, length));
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / 2 ** 24;
  for (let i = 0; i < 2000; i++) {
    const copy = data.slice();
    for (let flips = 1 + Math.floor(random() * 4); flips > 0; flips--) copy[Math.floor(random() * copy.length)] = Math.floor(random() * 256);
    cases.push(copy);
  }
  for (let i = 0; i < 200; i++) cases.push(Uint8Array.from({ length: Math.floor(random() * 600) }, () => Math.floor(random() * 256)));
  return cases;
}

describe("tlsServerName", () => {
  it("reads the SNI of a real ClientHello", async () => {
    expect(tlsServerName(await clientHello("www.example.test"))).toBe("www.example.test");
  });

  it("reads it when the ClientHello is split over two TLS records", async () => {
    const hello = await clientHello("split.example.test");
    const body = hello.subarray(5);
    const record = (part: Uint8Array) => [22, 3, 1, part.length >> 8, part.length & 255, ...part];
    const split = new Uint8Array([...record(body.subarray(0, 50)), ...record(body.subarray(50))]);
    expect(tlsServerName(split)).toBe("split.example.test");
  });

  it("gives undefined, never throws, on truncated or corrupted hellos and on garbage", async () => {
    const hello = await clientHello("a.example.test");
    for (const data of mangled(hello)) {
      const name = tlsServerName(data);
      if (name !== undefined) expect(name).toMatch(/^[A-Za-z0-9._:[\]*-]+$/);
    }
    const nameAt = Buffer.from(hello).indexOf("a.example.test");
    expect(tlsServerName(hello.subarray(0, nameAt + 14))).toBe("a.example.test"); // enough to name it
    expect(tlsServerName(hello.subarray(0, nameAt + 3))).toBeUndefined(); // the name is cut: not a prefix of it
    expect(tlsServerName(bytes("GET / HTTP/1.1\r\n"))).toBeUndefined();
  });
});

describe("httpHost", () => {
  it("reads the Host header, in any case, with its port", () => {
    expect(httpHost(bytes("GET /x HTTP/1.1\r\nUser-Agent: t\r\nhost: example.test:8080\r\n\r\n"))).toBe("example.test:8080");
    expect(httpHost(bytes("POST / HTTP/1.0\r\nHost: [2001:db8::1]\r\n\r\nbody"))).toBe("[2001:db8::1]");
  });

  it("waits for the Host line to be complete", () => {
    expect(httpHost(bytes("GET / HTTP/1.1\r\nHost: exam"))).toBeUndefined();
    expect(httpHost(bytes("GET / HTTP/1.1\r\nHost: example.test\r\n"))).toBe("example.test");
  });

  it("ignores what is not an HTTP/1 request and names that are not names", () => {
    expect(httpHost(bytes("SSH-2.0-OpenSSH_9.2\r\n"))).toBeUndefined();
    expect(httpHost(bytes("GET / HTTP/1.1\r\nHost: evil\x1b[31mred\r\n\r\n"))).toBeUndefined();
    for (const data of mangled(bytes("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"))) expect(() => httpHost(data)).not.toThrow();
  });
});

describe("dnsQuestion", () => {
  it("reads the name and type of a query", () => {
    expect(dnsQuestion(dnsQuery("example.test", 28))).toBe("example.test AAAA");
    expect(dnsQuestion(dnsQuery("_dmarc.example.test", 16))).toBe("_dmarc.example.test TXT");
    expect(dnsQuestion(dnsQuery("x.test", 4242))).toBe("x.test TYPE4242");
  });

  it("escapes bytes a terminal should not see, as dig does", () => {
    expect(dnsQuestion(dnsQuery("a\x1bb.test", 1))).toBe("a\\027b.test A");
  });

  it("ignores answers, and gives undefined, never throws, on truncated or corrupted queries", () => {
    const answer = dnsQuery("example.test", 1);
    answer[2]! |= 0x80;
    expect(dnsQuestion(answer)).toBeUndefined();
    const query = dnsQuery("example.test", 1);
    expect(dnsQuestion(query.subarray(0, query.length - 3))).toBeUndefined();
    for (const data of mangled(query)) {
      const question = dnsQuestion(data);
      if (question !== undefined) expect(question).toMatch(/^[\x21-\x7e]+ [A-Z0-9]+$/);
    }
  });
});
