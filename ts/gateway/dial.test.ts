import net, { type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { startHttpConnectProxy, startSocks5Proxy, type TestProxy } from "../../test/support/test-proxies.js";
import { dial, DialError, parseProxy, type UpstreamProxy } from "./dial.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** A server on `host` that greets each connection and then echoes. */
async function greetingEcho(host = "127.0.0.1"): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.write("hello;");
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return (server.address() as net.AddressInfo).port;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function proxy(start: () => Promise<TestProxy>): Promise<TestProxy> {
  const started = await start();
  cleanups.push(started.close);
  return started;
}

/** Sends `text`, half-closes, and returns everything the socket sends back. */
async function exchange(socket: Socket, text: string): Promise<string> {
  cleanups.push(() => socket.destroy());
  let received = "";
  socket.on("data", (data) => (received += data));
  socket.end(text);
  await new Promise((resolve) => socket.on("end", resolve));
  return received;
}

const dialError = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error("dial should have failed");
    },
    (error: DialError) => error,
  );

describe("dial", () => {
  it("connects straight to the target, with half-close and nothing lost", async () => {
    const port = await greetingEcho();
    const socket = await dial({ host: "127.0.0.1", port });
    expect(socket.allowHalfOpen).toBe(true);
    expect(await exchange(socket, "ping")).toBe("hello;ping");
  });

  it("fails with a reset refusal when the target refuses, not at its timeout", async () => {
    // At the timeout it would fail as "unreachable", "no answer ... within": the refusal shows it did not wait.
    const error = await dialError(dial({ host: "127.0.0.1", port: await closedPort() }));
    expect(error).toBeInstanceOf(DialError);
    expect(error).toMatchObject({ refusal: "reset", message: expect.stringContaining("ECONNREFUSED") });
  });

  for (const [name, start] of [["SOCKS5", startSocks5Proxy], ["HTTP CONNECT", startHttpConnectProxy]] as const) {
    describe(`through ${name}`, () => {
      const via = (p: TestProxy, auth = ""): UpstreamProxy => parseProxy(`${name === "SOCKS5" ? "socks5" : "http"}://${auth}127.0.0.1:${p.port}`);

      it("reaches IPv4 and IPv6 targets and keeps the bytes right after the handshake", async () => {
        const p = await proxy(() => start());
        const port4 = await greetingEcho();
        expect(await exchange(await dial({ host: "127.0.0.1", port: port4 }, { via: via(p) }), "four")).toBe("hello;four");
        const port6 = await greetingEcho("::1");
        expect(await exchange(await dial({ host: "::1", port: port6 }, { via: via(p) }), "six")).toBe("hello;six");
        expect(p.targets).toEqual([`127.0.0.1:${port4}`, name === "SOCKS5" ? `[0000:0000:0000:0000:0000:0000:0000:0001]:${port6}` : `[::1]:${port6}`]);
      });

      it("sends the URL's user name and password, and fails when the proxy rejects them", async () => {
        const p = await proxy(() => start({ username: "ann", password: "s3cret:@" }));
        const port = await greetingEcho();
        expect(await exchange(await dial({ host: "127.0.0.1", port }, { via: via(p, "ann:s3cret%3A%40@") }), "x")).toBe("hello;x");
        const error = await dialError(dial({ host: "127.0.0.1", port }, { via: via(p, "ann:wrong@") }));
        expect(error).toMatchObject({ refusal: "reset" });
      });

      it("passes the target's refusal on as a reset", async () => {
        const p = await proxy(() => start());
        const error = await dialError(dial({ host: "127.0.0.1", port: await closedPort() }, { via: via(p) }));
        expect(error).toBeInstanceOf(DialError);
        expect(error.refusal).toBe("reset");
      });
    });
  }

  it("gives up on a proxy that never answers, as unreachable", async () => {
    const silent = net.createServer((socket) => socket.resume()); // reads, never answers
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise((resolve) => silent.close(resolve)));
    const via = parseProxy(`socks5://127.0.0.1:${(silent.address() as net.AddressInfo).port}`);
    const error = await dialError(dial({ host: "127.0.0.1", port: 9 }, { via, timeoutMs: 300 }));
    expect(error).toMatchObject({ refusal: "unreachable", message: expect.stringContaining("within 0.3 s") });
  });

  it("gives up at once when its signal aborts", async () => {
    const silent = net.createServer((socket) => socket.resume());
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise((resolve) => silent.close(resolve)));
    const via = parseProxy(`socks5://127.0.0.1:${(silent.address() as net.AddressInfo).port}`);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const error = await dialError(dial({ host: "127.0.0.1", port: 9 }, { via, signal: controller.signal }));
    expect(error).toMatchObject({ refusal: "reset", message: expect.stringContaining("given up") });
  });

  it("fails when the proxy closes mid-handshake", async () => {
    const rude = net.createServer((socket) => socket.resume().end(new Uint8Array([5])));
    await new Promise<void>((resolve) => rude.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise((resolve) => rude.close(resolve)));
    const via = parseProxy(`socks5://127.0.0.1:${(rude.address() as net.AddressInfo).port}`);
    const error = await dialError(dial({ host: "127.0.0.1", port: 9 }, { via }));
    expect(error).toMatchObject({ refusal: "reset", message: expect.stringContaining("closed the connection during the handshake") });
  });
});

describe("parseProxy", () => {
  it("reads socks5:// and http:// URLs with optional credentials", () => {
    expect(parseProxy("socks5://127.0.0.1:1080")).toEqual({ protocol: "socks5", host: "127.0.0.1", port: 1080 });
    expect(parseProxy("http://u%20x:p%40ss@[::1]:3128")).toEqual({ protocol: "http", host: "::1", port: 3128, username: "u x", password: "p@ss" });
    expect(parseProxy("http://proxy.test")).toMatchObject({ host: "proxy.test", port: 80 });
    expect(parseProxy("socks5://proxy.test")).toMatchObject({ port: 1080 });
  });

  it("says what is wrong with anything else", () => {
    expect(() => parseProxy("127.0.0.1:1080")).toThrow(/socks5:\/\//);
    expect(() => parseProxy("localhost:1080")).toThrow(/must be socks5:\/\/ or http:\/\//);
    expect(() => parseProxy("not a url")).toThrow(/is not a URL/);
    expect(() => parseProxy("https://proxy.test:443")).toThrow(/socks5:\/\/ or http:\/\//);
    expect(() => parseProxy("http://proxy.test:3128/path")).toThrow(/no path/);
  });

  it("takes a SOCKS5 login only as RFC 1929 can send it: user name and password each 1 to 255 bytes", () => {
    // A user name without a password went out as a password of 0 bytes, which RFC 1929 has no room for.
    const refused = (text: string, why: RegExp) =>
      expect(() => parseProxy(text)).toThrow(expect.objectContaining({ name: "Error", message: expect.stringMatching(why) }));
    refused("socks5://ann@127.0.0.1:1080", /^"socks5:\/\/ann@127\.0\.0\.1:1080": .*no password/);
    refused("socks5://ann:@127.0.0.1:1080", /no password/);
    refused("socks5://:s3cret@127.0.0.1:1080", /^"socks5:\/\/:s3cret@127\.0\.0\.1:1080": .*no user name/);
    // 255 bytes is the most; counted in UTF-8 after the %-escapes are decoded (é is 2 bytes, %C3%A9 too).
    const e = "%C3%A9";
    expect(parseProxy(`socks5://${e.repeat(127)}a:${"p".repeat(255)}@proxy.test`)).toMatchObject({ username: `${"é".repeat(127)}a`, password: "p".repeat(255) });
    refused(`socks5://${e.repeat(128)}:p@proxy.test`, /the user name is 256 bytes in UTF-8; .*each 1 to 255 bytes$/);
    refused(`socks5://ann:${"%25".repeat(256)}@proxy.test`, /the password is 256 bytes in UTF-8; .*each 1 to 255 bytes$/);
    // HTTP Basic has room for both (RFC 7617: an empty password is "user:"), and no limit of its own.
    expect(parseProxy("http://ann@proxy.test:3128")).toMatchObject({ username: "ann", password: "" });
    expect(parseProxy(`http://ann:${"p".repeat(300)}@proxy.test:3128`)).toMatchObject({ password: "p".repeat(300) });
  });
});
