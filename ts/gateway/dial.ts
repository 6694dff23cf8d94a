// Opens the upstream TCP connection for a flow: straight to the destination, or through
// a SOCKS5 (RFC 1928, user/password RFC 1929) or HTTP CONNECT proxy. A failure is a
// DialError that says how to refuse the client: a reset, or "unreachable".

import net, { type Socket } from "node:net";
import { endpointText, parseIp, type Endpoint } from "../ip.js";

/** A proxy from `--via`. */
export interface UpstreamProxy {
  protocol: "socks5" | "http";
  host: string;
  port: number;
  username?: string;
  password?: string;
}

/** How the client's connection should be refused. */
export type Refusal = "reset" | "unreachable";

/** The upstream could not be reached; `refusal` is what the client should see. */
export class DialError extends Error {
  constructor(
    message: string,
    readonly refusal: Refusal,
  ) {
    super(message);
    this.name = "DialError";
  }
}

/** Parses `socks5://[user:pass@]HOST:PORT` or `http://[user:pass@]HOST:PORT`; throws an Error saying what is wrong. */
export function parseProxy(text: string): UpstreamProxy {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`${JSON.stringify(text)} is not a URL like socks5://127.0.0.1:1080 or http://user:pass@proxy:3128`);
  }
  const protocol = url.protocol === "socks5:" ? "socks5" : url.protocol === "http:" ? "http" : undefined;
  if (!protocol) throw new Error(`${JSON.stringify(text)}: the proxy must be socks5:// or http:// (CONNECT)`);
  if ((url.pathname !== "" && url.pathname !== "/") || url.search || url.hash) {
    throw new Error(`${JSON.stringify(text)}: a proxy URL has no path, query or fragment`);
  }
  if (!url.hostname) throw new Error(`${JSON.stringify(text)}: the proxy URL names no host`);
  if (url.port === "0") throw new Error(`${JSON.stringify(text)}: port 0 is no proxy to dial`);
  const proxy: UpstreamProxy = {
    protocol,
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    // URL drops a scheme's default port (80 for http:); socks5: has none, 1080 is SOCKS's.
    port: url.port ? Number(url.port) : protocol === "http" ? 80 : 1080,
  };
  if (url.username || url.password) {
    try {
      proxy.username = decodeURIComponent(url.username);
      proxy.password = decodeURIComponent(url.password);
    } catch {
      throw new Error(`${JSON.stringify(text)}: the login has a "%" that is no UTF-8 escape (write "%" itself as %25)`);
    }
    // RFC 1929 section 2 sends each with a length byte and no room for an empty one; HTTP
    // Basic (RFC 7617) has room for "user:" with no password, and no limit of its own.
    if (protocol === "socks5") {
      const bad = (why: string) => new Error(`${JSON.stringify(text)}: ${why}; a SOCKS5 login is user:password, each 1 to 255 bytes`);
      if (!proxy.username) throw bad("the login has no user name");
      if (!proxy.password) throw bad("the login has no password");
      for (const [name, value] of [["user name", proxy.username], ["password", proxy.password]] as const) {
        const bytes = new TextEncoder().encode(value).length;
        if (bytes > 255) throw bad(`the ${name} is ${bytes} bytes in UTF-8`);
      }
    }
  }
  return proxy;
}

export interface DialOptions {
  /** Through this proxy; else straight to the target. */
  via?: UpstreamProxy;
  /** Give up after this long (ms) with an "unreachable" DialError. */
  timeoutMs?: number;
  /** Aborting gives up at once (a "reset" DialError). */
  signal?: AbortSignal;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** A connected socket to `target` (made with allowHalfOpen, as splice needs), or a DialError. */
export async function dial(target: Endpoint, options: DialOptions = {}): Promise<Socket> {
  const { via } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const firstHop = via ? { host: via.host, port: via.port } : target;
  const where = via ? `proxy ${endpointText(firstHop)}` : endpointText(target);
  const socket = net.connect({ host: firstHop.host, port: firstHop.port, allowHalfOpen: true });
  socket.setNoDelay(true); // the client's own stack already batches small writes
  const timer = setTimeout(() => socket.destroy(new DialError(`no answer from ${where} within ${timeoutMs / 1000} s`, "unreachable")), timeoutMs);
  const abort = () => socket.destroy(new DialError(`${where}: given up`, "reset"));
  if (options.signal?.aborted) abort();
  options.signal?.addEventListener("abort", abort);
  // Errors are awaited below, and later seen by whoever uses the socket (splice checks
  // `destroyed`); without a listener, one in between would crash the process.
  socket.on("error", () => {});
  try {
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      socket.once("error", onError).once("connect", () => (socket.off("error", onError), resolve()));
    });
    if (via) {
      const replies = new ReplyReader(socket);
      await (via.protocol === "socks5" ? socks5Connect : httpConnect)(socket, replies, target, via);
      replies.stop();
    }
    return socket;
  } catch (error) {
    socket.destroy();
    throw asDialError(error, where);
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", abort);
  }
}

function asDialError(error: unknown, where: string): DialError {
  if (error instanceof DialError) return error;
  const code = (error as NodeJS.ErrnoException).code ?? "";
  const refusal: Refusal = code === "ECONNREFUSED" || code === "ECONNRESET" ? "reset" : "unreachable";
  return new DialError(`${where}: ${code || (error as Error).message}`, refusal);
}

// ---- SOCKS5 ----

const SOCKS_REPLIES: Record<number, [string, Refusal]> = {
  1: ["general failure", "reset"],
  2: ["not allowed by its rules", "reset"],
  3: ["network unreachable", "unreachable"],
  4: ["host unreachable", "unreachable"],
  5: ["connection refused", "reset"],
  6: ["TTL expired", "unreachable"],
  7: ["command not supported", "reset"],
  8: ["address type not supported", "reset"],
};

async function socks5Connect(socket: Socket, replies: ReplyReader, target: Endpoint, proxy: UpstreamProxy): Promise<void> {
  const fail = (why: string, refusal: Refusal = "reset") => new DialError(`SOCKS5 proxy ${endpointText(proxy)}: ${why}`, refusal);
  const withPassword = proxy.username !== undefined;
  socket.write(new Uint8Array(withPassword ? [5, 2, 0, 2] : [5, 1, 0])); // methods: none, user/password
  const [version, method] = await replies.bytes(2);
  if (version !== 5) throw fail("not a SOCKS5 proxy");
  if (method === 2 && withPassword) {
    const user = new TextEncoder().encode(proxy.username);
    const password = new TextEncoder().encode(proxy.password);
    if (user.length > 255 || password.length > 255) throw fail("user name and password must be at most 255 bytes each");
    socket.write(new Uint8Array([1, user.length, ...user, password.length, ...password]));
    const [, status] = await replies.bytes(2);
    if (status !== 0) throw fail("it rejected the user name or password");
  } else if (method !== 0) {
    throw fail(method === 2 ? "it wants a user name and password (socks5://user:pass@host:port)" : "it accepts none of our authentication methods");
  }
  const address = parseIp(target.host);
  if (!address) throw fail(`${JSON.stringify(target.host)} is not an IP address`);
  socket.write(new Uint8Array([5, 1, 0, address.family === 4 ? 1 : 4, ...address.bytes, target.port >> 8, target.port & 255]));
  const [, reply, , addressType] = await replies.bytes(4);
  if (reply !== 0) {
    const [why, refusal] = SOCKS_REPLIES[reply!] ?? [`error ${reply}`, "reset"];
    throw fail(`${endpointText(target)}: ${why}`, refusal);
  }
  // The bound address the proxy reports is of no use to us, but must be read past.
  const addressLength = addressType === 1 ? 4 : addressType === 4 ? 16 : addressType === 3 ? (await replies.bytes(1))[0]! : -1;
  if (addressLength < 0) throw fail(`unknown address type ${addressType} in its reply`);
  await replies.bytes(addressLength + 2);
}

// ---- HTTP CONNECT ----

const MAX_RESPONSE_HEAD = 16 * 1024;

async function httpConnect(socket: Socket, replies: ReplyReader, target: Endpoint, proxy: UpstreamProxy): Promise<void> {
  const authority = endpointText(target);
  const credentials = proxy.username === undefined ? "" : `Proxy-Authorization: Basic ${Buffer.from(`${proxy.username}:${proxy.password}`).toString("base64")}\r\n`;
  socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${credentials}\r\n`);
  // Byte by byte, so what follows the response head stays in the socket for the relay.
  let head = "";
  while (!head.endsWith("\r\n\r\n")) {
    if (head.length >= MAX_RESPONSE_HEAD) throw new DialError(`HTTP proxy ${endpointText(proxy)}: response head too long`, "reset");
    head += String.fromCharCode((await replies.bytes(1))[0]!);
  }
  const statusLine = head.slice(0, head.indexOf("\r\n"));
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1];
  if (status?.startsWith("2")) return;
  const refusal: Refusal = status === "504" ? "unreachable" : "reset";
  throw new DialError(`HTTP proxy ${endpointText(proxy)}: ${authority}: ${JSON.stringify(statusLine.slice(0, 100))}`, refusal);
}

// ---- reading a handshake ----

/**
 * Reads a proxy's replies in paused mode, exactly as many bytes as asked, so whatever
 * follows them (the target's first bytes, even its FIN) stays in the socket for the relay.
 * One 'readable' listener for the whole handshake: adding one while bytes are buffered
 * fires it again at once, and waiting that way would spin.
 */
class ReplyReader {
  #wake: (() => void) | undefined;
  #ended = false;
  #error: Error | undefined;
  readonly #onReadable = () => this.#wake?.();
  readonly #onEnd = () => ((this.#ended = true), this.#wake?.());
  readonly #onError = (error: Error) => ((this.#error = error), this.#wake?.());

  constructor(readonly socket: Socket) {
    socket.on("readable", this.#onReadable).on("end", this.#onEnd).on("close", this.#onEnd).on("error", this.#onError);
  }

  async bytes(size: number): Promise<Buffer> {
    for (;;) {
      const chunk: Buffer | null = this.socket.read(size);
      if (chunk !== null) {
        if (chunk.length === size) return chunk;
        break; // shorter: the stream ended in the middle of a reply
      }
      if (this.#error) throw this.#error;
      if (this.#ended || this.socket.destroyed) break;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    throw new DialError("the proxy closed the connection during the handshake", "reset");
  }

  /** Hands the socket over: whoever adds a 'data' listener next gets the rest. */
  stop(): void {
    this.socket.off("readable", this.#onReadable).off("end", this.#onEnd).off("close", this.#onEnd).off("error", this.#onError);
  }
}
