// The HTTP proxy of `wg-netstack connect --http`: CONNECT tunnels and absolute-URI
// requests (one per upstream connection), both into the tunnel, names resolved through
// it; Proxy-Authorization Basic when a login is set.

import type net from "node:net";
import { endpointText } from "../ip.js";
import { openTcpDoor, TcpFlow, type Door } from "./forward.js";
import { reset } from "./relay.js";
import type { ProxyOptions } from "./socks5.js";
import { basicAuthMatches, errorResponse, headEnd, HttpProxyError, MAX_HEAD_BYTES, parseProxyRequest, statusForError } from "./http-proxy-wire.js";

const HEAD_TIMEOUT_MS = 30_000;

export function startHttpProxy(options: ProxyOptions): Promise<Door> {
  const door = (address: string) => ({ protocol: "http" as const, target: "*", description: `http ${address}` });
  return openTcpDoor(options.listen, (client, via) => serveHttp(client, via, options).catch(() => reset(client)), door);
}

/** The request head and whatever came after it, or undefined if the client left first. */
function readHead(client: net.Socket, signal: AbortSignal): Promise<{ head: string; rest: Uint8Array } | undefined> {
  return new Promise((resolve, reject) => {
    let buffer = Buffer.alloc(0);
    const finish = (result?: { head: string; rest: Uint8Array }, error?: Error) => {
      clearTimeout(timer);
      client.off("data", onData);
      client.off("end", onGone);
      client.off("close", onGone);
      signal.removeEventListener("abort", onGone);
      client.pause();
      if (error) reject(error);
      else resolve(result);
    };
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const end = headEnd(buffer);
      if (end >= 0) return finish({ head: buffer.subarray(0, end).toString("latin1"), rest: buffer.subarray(end) });
      if (buffer.length > MAX_HEAD_BYTES) finish(undefined, new HttpProxyError(431, `the request head is over ${MAX_HEAD_BYTES} bytes`));
    };
    const onGone = () => finish();
    const timer = setTimeout(onGone, HEAD_TIMEOUT_MS);
    client.on("data", onData);
    client.on("end", onGone);
    client.on("close", onGone);
    signal.addEventListener("abort", onGone, { once: true });
  });
}

async function serveHttp(client: net.Socket, via: string, options: ProxyOptions): Promise<void> {
  client.on("error", () => {});
  let request;
  let rest: Uint8Array;
  try {
    const read = await readHead(client, options.signal);
    if (!read) return reset(client);
    rest = read.rest;
    request = parseProxyRequest(read.head);
    if (options.credentials && !basicAuthMatches(request.authorization, options.credentials)) {
      client.end(errorResponse(407, "this proxy needs a login", ['Proxy-Authenticate: Basic realm="wg-netstack"']));
      return;
    }
  } catch (error) {
    const status = error instanceof HttpProxyError ? error.status : 400;
    client.end(errorResponse(status, (error as Error).message));
    return;
  }
  const target = { host: request.host, port: request.port };
  const flow = new TcpFlow(client, via, target, options);
  const dialed = await flow.dial(options.tunnel, options.signal);
  if ("end" in dialed) {
    client.end(errorResponse(statusForError(dialed.code), `cannot reach ${endpointText(target)}: ${dialed.error ?? dialed.end}`));
    flow.done({ up: 0, down: 0, ...dialed });
    return;
  }
  if (request.forwardHead === undefined) client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
  // An absolute-URI request goes on under its rewritten head, byte for byte as read (latin1),
  // and counted up as everything the client sends.
  const early = request.forwardHead === undefined ? rest : Buffer.concat([Buffer.from(request.forwardHead, "latin1"), rest]);
  client.resume();
  await flow.relay(dialed.socket, options.signal, early);
}
