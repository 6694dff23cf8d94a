// node:dgram adapter: what reaches `onError`, and what does not.

import { createSocket, type SocketOptions } from "node:dgram";
import { describe, expect, it } from "vitest";
import { nodeRuntime, listen } from "./node.js";
import { AddressInUseError } from "./types.js";
import type { Endpoint } from "../ip.js";

interface Reported {
  error: Error;
  fatal: boolean;
}

/** A socket on 127.0.0.1 bound through `listen`, with what it received and reported. */
async function bound(options: Partial<SocketOptions> = {}) {
  const raw = createSocket({ type: "udp4", ...options });
  const received: string[] = [];
  const reported: Reported[] = [];
  const socket = await listen(raw, "127.0.0.1", 0, (data) => void received.push(new TextDecoder().decode(data)), (error, fatal) => void reported.push({ error, fatal }));
  return { raw, socket, received, reported };
}

/** Sends `text` to `to` from a fresh socket and waits until `received` has grown. */
async function sendTo(to: Endpoint, text: string, received: string[]): Promise<void> {
  const before = received.length;
  const sender = createSocket("udp4");
  sender.send(text, to.port, to.host);
  while (received.length === before) await new Promise((resolve) => setTimeout(resolve, 5));
  sender.close();
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe("node:dgram adapter", () => {
  it("rejects with AddressInUseError naming the address", async () => {
    const first = await nodeRuntime.bindUdp("127.0.0.1", 0, () => {}, () => {});
    const port = first.address.port;
    const error = await nodeRuntime.bindUdp("127.0.0.1", port, () => {}, () => {}).then(
      () => undefined,
      (e: unknown) => e,
    );
    await first.close();
    expect(error).toBeInstanceOf(AddressInUseError);
    expect((error as AddressInUseError).message).toBe(`UDP 127.0.0.1:${port} is already in use`);
    expect((error as AddressInUseError).host).toBe("127.0.0.1");
    expect((error as AddressInUseError).port).toBe(port);
    expect((error as AddressInUseError).code).toBe("EADDRINUSE");
    expect(((error as Error).cause as { code: string }).code).toBe("EADDRINUSE");
  });

  it("reports a socket error as not fatal and goes on receiving", async () => {
    const { raw, socket, received, reported } = await bound();
    const boom = new Error("recvmsg failed");
    raw.emit("error", boom);
    expect(reported).toEqual([{ error: boom, fatal: false }]);
    await sendTo(socket.address, "still here", received);
    expect(received).toEqual(["still here"]);
    await socket.close();
    expect(reported).toHaveLength(1);
  });

  it("reports a socket closed under it as fatal, and close() still resolves", async () => {
    const { raw, socket, reported } = await bound();
    raw.close();
    await settle();
    expect(reported).toHaveLength(1);
    expect(reported[0]!.fatal).toBe(true);
    expect(reported[0]!.error.message).toBe(`UDP socket 127.0.0.1:${socket.address.port} closed unexpectedly`);
    // Sending on it is a lost datagram, not a throw.
    socket.send(new Uint8Array(1), { host: "127.0.0.1", port: 9 });
    await socket.close();
  });

  it("keeps quiet about its own close", async () => {
    const { socket, reported } = await bound();
    await socket.close();
    await settle();
    expect(reported).toEqual([]);
  });
});

