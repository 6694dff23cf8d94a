// Small SOCKS5 and HTTP CONNECT proxies on 127.0.0.1 for tests: they record each target
// they were asked for, check credentials when given some, and relay with pipe().

import net, { type Socket } from "node:net";

export interface TestProxy {
  port: number;
  /** "host:port" of each CONNECT, in order (IPv6 bracketed). */
  targets: string[];
  close(): Promise<void>;
}

export interface TestProxyOptions {
  username?: string;
  password?: string;
}

/** SOCKS5 with CONNECT only; user/password auth when `username` is set. */
export function startSocks5Proxy(options: TestProxyOptions = {}): Promise<TestProxy> {
  return startProxy(async (client, targets, track) => {
    const [, methodCount] = await read(client, 2);
    const methods = [...(await read(client, methodCount!))];
    if (options.username !== undefined) {
      if (!methods.includes(2)) return void client.end(new Uint8Array([5, 0xff]));
      client.write(new Uint8Array([5, 2]));
      const [, userLength] = await read(client, 2);
      const user = (await read(client, userLength!)).toString();
      const password = (await read(client, (await read(client, 1))[0]!)).toString();
      const ok = user === options.username && password === options.password;
      client.write(new Uint8Array([1, ok ? 0 : 1]));
      if (!ok) return void client.end();
    } else {
      client.write(new Uint8Array([5, 0]));
    }
    const [, command, , addressType] = await read(client, 4);
    const address = await read(client, addressType === 1 ? 4 : 16);
    const port = (await read(client, 2)).readUInt16BE(0);
    const host = addressType === 1 ? [...address].join(".") : (address.toString("hex").match(/.{4}/g) ?? []).join(":");
    targets.push(addressType === 1 ? `${host}:${port}` : `[${host}]:${port}`);
    if (command !== 1) return void client.end(new Uint8Array([5, 7, 0, 1, 0, 0, 0, 0, 0, 0]));
    const upstream = track(net.connect({ host, port, allowHalfOpen: true }));
    // A failure reply only while connecting: later, the relay resets the client.
    const refuse = (error: NodeJS.ErrnoException) => client.end(new Uint8Array([5, error.code === "ECONNREFUSED" ? 5 : 4, 0, 1, 0, 0, 0, 0, 0, 0]));
    upstream.once("error", refuse);
    upstream.once("connect", () => {
      upstream.off("error", refuse);
      client.write(new Uint8Array([5, 0, 0, 1, 127, 0, 0, 1, 0, 0]));
      relay(client, upstream);
    });
  });
}

/** HTTP CONNECT; Basic Proxy-Authorization when `username` is set. */
export function startHttpConnectProxy(options: TestProxyOptions = {}): Promise<TestProxy> {
  return startProxy(async (client, targets, track) => {
    let head = "";
    while (!head.endsWith("\r\n\r\n")) head += (await read(client, 1)).toString("latin1");
    const [, authority] = /^CONNECT (\S+) HTTP\/1\.1\r\n/.exec(head) ?? [];
    if (!authority) return void client.end("HTTP/1.1 400 Bad Request\r\n\r\n");
    targets.push(authority);
    if (options.username !== undefined) {
      const expected = `Basic ${Buffer.from(`${options.username}:${options.password}`).toString("base64")}`;
      if (!head.includes(`\r\nProxy-Authorization: ${expected}\r\n`)) return void client.end("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n");
    }
    const colon = authority.lastIndexOf(":");
    const host = authority.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
    const upstream = track(net.connect({ host, port: Number(authority.slice(colon + 1)), allowHalfOpen: true }));
    // A failure reply only while connecting: later, the relay resets the client.
    const refuse = () => client.end("HTTP/1.1 502 Bad Gateway\r\n\r\n");
    upstream.once("error", refuse);
    upstream.once("connect", () => {
      upstream.off("error", refuse);
      client.write("HTTP/1.1 200 Connection established\r\n\r\n");
      relay(client, upstream);
    });
  });
}

async function startProxy(handle: (client: Socket, targets: string[], track: (socket: Socket) => Socket) => Promise<void>): Promise<TestProxy> {
  const targets: string[] = [];
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    return socket.on("error", () => {});
  };
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    handle(track(client), targets, track).catch(() => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    targets,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Both ways with pipe() (a FIN is passed on by end()); an error, or a close before the FIN, resets the other side. */
function relay(client: Socket, upstream: Socket): void {
  for (const [socket, other] of [[client, upstream], [upstream, client]] as const) {
    socket.on("error", () => other.resetAndDestroy());
    socket.on("close", () => socket.readableEnded || other.resetAndDestroy());
  }
  client.pipe(upstream);
  upstream.pipe(client);
}

/** Exactly `size` bytes from a paused socket. */
async function read(socket: Socket, size: number): Promise<Buffer> {
  for (;;) {
    const chunk: Buffer | null = socket.read(size);
    if (chunk) return chunk;
    if (socket.readableEnded || socket.destroyed) throw new Error("closed");
    await new Promise<void>((resolve) => {
      const wake = () => (socket.off("readable", wake).off("close", wake), resolve());
      socket.on("readable", wake).on("close", wake);
    });
  }
}
