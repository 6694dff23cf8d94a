// The SOCKS5 proxy of `wg-netstack connect --socks5`: CONNECT (names resolved through the
// tunnel, as socks5h) and UDP ASSOCIATE (RFC 1928), with RFC 1929 username/password when
// configured. A malformed message gets the reply RFC 1928 has for it, then the connection
// is closed; nothing else is affected.

import { createSocket } from "node:dgram";
import type net from "node:net";
import { parseIp, type Endpoint } from "../ip.js";
import type { Tunnel } from "../tunnel/tunnel.js";
import type { Door, FlowContext } from "./forward.js";
import { listening, openTcpDoor, TcpFlow } from "./forward.js";
import { reset } from "./relay.js";
import {
  CMD_CONNECT,
  CMD_UDP_ASSOCIATE,
  encodeReply,
  encodeUdpDatagram,
  METHOD_NO_AUTH,
  METHOD_NONE_ACCEPTABLE,
  METHOD_USER_PASS,
  parseGreeting,
  parseRequest,
  parseUdpDatagram,
  parseUserPass,
  replyForError,
  REPLY,
  SOCKS_VERSION,
  SocksError,
  type Parsed,
} from "./socks5-wire.js";

export interface Credentials {
  user: string;
  pass: string;
}

export interface ProxyOptions extends FlowContext {
  tunnel: Tunnel;
  listen: Endpoint;
  /** Required of clients when given. */
  credentials?: Credentials;
  signal: AbortSignal;
}

/** A client that has not finished its handshake by then is dropped. */
const HANDSHAKE_TIMEOUT_MS = 30_000;

export function startSocks5(options: ProxyOptions): Promise<Door> {
  const door = (address: string) => ({ protocol: "socks5" as const, target: "*", description: `socks5 ${address}` });
  return openTcpDoor(options.listen, (client, via) => serveSocks(client, via, options).catch(() => reset(client)), door);
}

/** Reads whole messages off a socket: each `next(parse)` waits until `parse` sees a complete one. */
class MessageReader {
  #buffer = new Uint8Array(0);
  #waiting: (() => void) | undefined;
  #ended = false;

  constructor(readonly socket: net.Socket) {
    socket.on("data", this.#onData);
    socket.on("end", this.#onEnd);
    socket.on("close", this.#onEnd);
  }

  readonly #onData = (chunk: Buffer) => {
    const joined = new Uint8Array(this.#buffer.length + chunk.length);
    joined.set(this.#buffer);
    joined.set(chunk, this.#buffer.length);
    this.#buffer = joined;
    this.#waiting?.();
  };

  readonly #onEnd = () => {
    this.#ended = true;
    this.#waiting?.();
  };

  async next<T>(parse: (bytes: Uint8Array) => Parsed<T> | undefined): Promise<T> {
    for (;;) {
      const parsed = parse(this.#buffer);
      if (parsed) {
        this.#buffer = this.#buffer.subarray(parsed.length);
        return parsed.value;
      }
      if (this.#ended) throw new SocksError("the client closed during the handshake");
      await new Promise<void>((resolve) => (this.#waiting = resolve));
      this.#waiting = undefined;
    }
  }

  /** Stops reading; hands back what came after the last message (a client may send data before our reply). */
  release(): Uint8Array {
    this.socket.pause();
    this.socket.off("data", this.#onData);
    this.socket.off("end", this.#onEnd);
    this.socket.off("close", this.#onEnd);
    return this.#buffer;
  }
}

async function serveSocks(client: net.Socket, via: string, options: ProxyOptions): Promise<void> {
  client.on("error", () => {});
  const reader = new MessageReader(client);
  const giveUp = () => reset(client);
  const timer = setTimeout(giveUp, HANDSHAKE_TIMEOUT_MS);
  options.signal.addEventListener("abort", giveUp, { once: true });
  let request;
  try {
    const methods = await reader.next(parseGreeting);
    const wanted = options.credentials ? METHOD_USER_PASS : METHOD_NO_AUTH;
    if (!methods.includes(wanted)) {
      client.end(new Uint8Array([SOCKS_VERSION, METHOD_NONE_ACCEPTABLE]));
      return;
    }
    client.write(new Uint8Array([SOCKS_VERSION, wanted]));
    if (options.credentials) {
      const given = await reader.next(parseUserPass);
      const ok = given.user === options.credentials.user && given.pass === options.credentials.pass;
      // RFC 1929 section 2: a non-zero STATUS, then the server must close the connection.
      if (!ok) {
        client.end(new Uint8Array([1, 1]));
        return;
      }
      client.write(new Uint8Array([1, 0]));
    }
    request = await reader.next(parseRequest);
  } catch (error) {
    const reply = error instanceof SocksError ? error.reply : undefined;
    if (reply !== undefined) client.end(encodeReply(reply));
    else client.destroy();
    return;
  } finally {
    clearTimeout(timer);
    options.signal.removeEventListener("abort", giveUp);
  }

  const target = { host: request.address.host, port: request.address.port };
  if (request.command === CMD_UDP_ASSOCIATE) {
    reader.release();
    return associateUdp(client, via, options);
  }
  if (request.command !== CMD_CONNECT) {
    client.end(encodeReply(REPLY.commandNotSupported));
    return;
  }
  const flow = new TcpFlow(client, via, target, options);
  const dialed = await flow.dial(options.tunnel, options.signal);
  if ("end" in dialed) {
    client.end(encodeReply(replyForError(dialed.code)));
    flow.done({ up: 0, down: 0, ...dialed });
    return;
  }
  const early = reader.release();
  // BND.ADDR/PORT: our tunnel side of the connection (section 6).
  client.write(encodeReply(REPLY.succeeded, { host: dialed.socket.localAddress ?? "0.0.0.0", port: dialed.socket.localPort ?? 0 }));
  client.resume();
  await flow.relay(dialed.socket, options.signal, early);
}

/**
 * UDP ASSOCIATE (section 7): a UDP socket next to the proxy's, relaying the client's
 * datagrams into the tunnel and answers back, for as long as the TCP connection lasts.
 * Only the client's own IP may use it; fragments are dropped (we do not reassemble).
 */
async function associateUdp(control: net.Socket, via: string, options: ProxyOptions): Promise<void> {
  const start = Date.now();
  const clientIp = control.remoteAddress ?? "";
  const relaySocket = createSocket({ type: parseIp(options.listen.host)?.family === 6 ? "udp6" : "udp4" });
  relaySocket.on("error", () => {});
  try {
    relaySocket.bind(0, options.listen.host);
    await listening(relaySocket);
  } catch {
    control.end(encodeReply(REPLY.generalFailure));
    return;
  }
  const tunnelSocket = options.tunnel.udp();
  tunnelSocket.on("error", () => {}); // an unreachable destination: the datagram is lost, as UDP's are
  let client: Endpoint | undefined;
  let up = 0;
  let down = 0;
  let lastTarget: Endpoint | undefined;
  relaySocket.on("message", (datagram, rinfo) => {
    if (rinfo.address !== clientIp) return;
    let parsed;
    try {
      parsed = parseUdpDatagram(datagram);
    } catch {
      return; // malformed: dropped
    }
    if (!parsed) return; // a fragment
    client = { host: rinfo.address, port: rinfo.port };
    lastTarget = { host: parsed.address.host, port: parsed.address.port };
    up += parsed.data.length;
    tunnelSocket.send(parsed.data, parsed.address.port, parsed.address.host, () => {});
  });
  tunnelSocket.on("message", (data: Buffer, from) => {
    if (!client) return;
    down += data.length;
    relaySocket.send(encodeUdpDatagram({ host: from.address, port: from.port }, data), client.port, client.host);
  });
  const bound = relaySocket.address();
  control.write(encodeReply(REPLY.succeeded, { host: bound.address, port: bound.port }));
  control.resume();
  control.on("data", () => {}); // nothing more is expected on it
  // The association lasts as long as the TCP connection (section 7), or until shutdown.
  await new Promise<void>((resolve) => {
    control.once("close", resolve);
    control.once("end", () => control.end());
    const abort = () => {
      reset(control);
      resolve();
    };
    if (options.signal.aborted) abort();
    else options.signal.addEventListener("abort", abort, { once: true });
  });
  tunnelSocket.close();
  relaySocket.close();
  const dst = lastTarget ?? { host: "0.0.0.0", port: 0 };
  options.log.flow({
    start,
    durationMs: Date.now() - start,
    peer: options.peerOf(dst.host),
    via,
    protocol: "udp",
    src: client ?? { host: clientIp, port: control.remotePort ?? 0 },
    dst,
    up,
    down,
    end: options.signal.aborted ? "shutdown" : "closed",
  });
}
