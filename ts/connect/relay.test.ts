// relay()'s verdict against a real tunnel: a flow is "closed" only once the peer has
// acknowledged our FIN and the bytes before it, not when the tunnel socket says 'close'.
//
//   local client ─net─▶ relay ─TunnelSocket─▶ lossy relay (can be cut) ─▶ startServer's onTcp

import { once } from "node:events";
import net from "node:net";
import { Duplex } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLossyRelay } from "../../test/support/lossy-relay.mjs";
import { startLoopbackTunnel } from "../../test/support/loopback-tunnel.js";
import type { TcpConnection } from "../index.js";
import type { Tunnel } from "../tunnel/tunnel.js";
import { relay, type RelayResult } from "./relay.js";

const T = 30_000;

/** Reads a connection to its FIN. */
async function readAll(connection: TcpConnection): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for (;;) {
    const chunk = await connection.read();
    if (chunk.length === 0) return Buffer.concat(chunks);
    chunks.push(chunk);
  }
}

describe("relay", () => {
  let stacks: Awaited<ReturnType<typeof startLoopbackTunnel>>;
  let tunnel: Tunnel;
  let link: Awaited<ReturnType<typeof startLossyRelay>>;
  let received: Promise<Buffer>;

  beforeAll(async () => {
    stacks = await startLoopbackTunnel(
      {
        // The upstream ends first, then reads what the client still sends.
        onTcp: async (connection) => {
          received = readAll(connection);
          await connection.write(new TextEncoder().encode("hello"));
          await connection.end();
        },
      },
      {
        route: async (server) => {
          link = await startLossyRelay({ listen: { host: "127.0.0.1", port: 0 }, target: { host: "127.0.0.1", port: server.address.port } });
          return link.listen;
        },
      },
    );
    tunnel = stacks.tunnel;
  }, T);

  afterAll(async () => {
    await stacks?.close();
    await link?.close();
  });

  it("says 'closed' only once the peer acknowledged our FIN (RFC 9293 3.6), not at the tunnel socket's 'close'", async () => {
    const listener = net.createServer({ allowHalfOpen: true });
    listener.listen(0, "127.0.0.1");
    await once(listener, "listening");
    const client = net.connect({ port: (listener.address() as net.AddressInfo).port, host: "127.0.0.1", allowHalfOpen: true });
    const [local] = (await once(listener, "connection")) as [net.Socket];
    const upstream = tunnel.connect({ port: 80, host: "10.0.0.1", allowHalfOpen: true });
    await once(upstream, "connect");
    let result: RelayResult | undefined;
    const relayed = relay(local, upstream).then((r) => (result = r));

    const down: Buffer[] = [];
    client.on("data", (chunk: Buffer) => down.push(chunk));
    await once(client, "end");
    expect(Buffer.concat(down).toString()).toBe("hello");

    // Cut the way to the server, then end: our last bytes and FIN cannot be acknowledged.
    link.links.up.loss = 1;
    client.end("bye");
    await Promise.all([once(upstream, "close"), once(local, "close")]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(result).toBeUndefined();

    // Mend it: the retransmitted "bye" and FIN arrive and are acknowledged.
    link.links.up.loss = 0;
    await relayed;
    expect(result).toEqual({ up: 3, down: 5, end: "closed" });
    expect((await received).toString()).toBe("bye");
    client.destroy();
    listener.close();
  }, T);

  it("calls EPIPE from the upstream a reset (Deno reports a peer's reset so on a write) and resets the client", async () => {
    const listener = net.createServer({ allowHalfOpen: true });
    listener.listen(0, "127.0.0.1");
    await once(listener, "listening");
    const client = net.connect({ port: (listener.address() as net.AddressInfo).port, host: "127.0.0.1", allowHalfOpen: true });
    const [local] = (await once(listener, "connection")) as [net.Socket];
    // An upstream whose writes fail as a socket's do after the peer's reset.
    const upstream = new Duplex({
      read() {},
      write(_chunk, _encoding, callback) {
        callback(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
      },
    });
    const relayed = relay(local, upstream);
    const clientError = once(client, "error");
    client.write("data");
    const result = await relayed;
    expect(result.end).toBe("upstream-reset");
    expect((result.error as Error & { code?: string }).code).toBe("EPIPE");
    const [error] = (await clientError) as [Error & { code?: string }];
    expect(error.code).toBe("ECONNRESET");
    listener.close();
  }, T);
});
