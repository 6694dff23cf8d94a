// `wg-netstack serve --web`: one page and the JSON API it uses, over node:http (which
// Node, Deno and Bun all serve). Every request needs the token (see access.ts); the
// page is one HTML document with its style and script inline, so it works offline.
//
//   GET  /                           the page
//   GET  /api/status                 the server: key, addresses, uptime, totals
//   GET  /api/peers                  peers: addresses, endpoint, handshake, bytes, rate history
//   GET  /api/peers/NAME/config      a peer's wg-quick config (?download: as NAME.conf)
//   GET  /api/peers/NAME/qr.svg      the same config as a QR code
//   POST /api/peers                  {"name"} adds a peer, as `wg-netstack peer add`
//   POST /api/peers/NAME/remove      removes it, as `wg-netstack peer remove`
//   GET  /api/flows                  open flows and the recent finished ones
//   GET  /api/events                 Server-Sent Events: flow-open, flow-end, stats (each second)
//   GET  /api/capture                the capture's state
//   POST /api/capture/start          {"peer"?} starts a pcap capture (every peer without one)
//   POST /api/capture/stop           stops it
//   GET  /api/capture.pcap           the last capture

import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import { createReadStream } from "node:fs";
import type { AddressInfo } from "node:net";
import { endpointText, parseIp, type Endpoint, unmappedEndpoint } from "../ip.js";
import { qrCode } from "../qr.js";
import type { ConfigStore, PeerRecord } from "../gateway/config-store.js";
import { StoreError } from "../gateway/config-store.js";
import type { Gateway } from "../gateway/gateway.js";
import { checkAccess, newToken, tokenCookie } from "./access.js";
import { type BoardEvent, type FlowBoard, RateMeter } from "./board.js";
import { CaptureError, Captures } from "./capture.js";
import { pageHtml } from "./page.js";

/** How often the page gets the peers' counters and rates. */
const STATS_INTERVAL_MS = 1000;
/** A request body larger than this is refused: the API takes a name at most. */
const MAX_BODY_BYTES = 4096;
/** An event stream whose reader lets this much pile up is closed (the browser reconnects and reloads). */
const MAX_PENDING_EVENT_BYTES = 1024 * 1024;

export interface WebOptions {
  host: string;
  port: number;
  token: string;
  gateway: Gateway;
  store: ConfigStore;
  board: FlowBoard;
}

export interface WebServer {
  readonly address: Endpoint;
  /** The page's address with the token, to print once. */
  readonly url: string;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function startWebServer(options: WebOptions): Promise<WebServer> {
  const { gateway, store, board, token } = options;
  const started = Date.now();
  const rates = new RateMeter();
  const captures = new Captures((listener) => gateway.tap(listener));
  const streams = new Set<ServerResponse>();

  const status = () => {
    const stats = gateway.stats();
    return {
      publicKey: gateway.publicKey,
      udp: endpointText(gateway.address),
      endpoint: gateway.endpoint,
      configDir: store.dir,
      startedAt: started,
      uptimeMs: Date.now() - started,
      peers: stats.peers.length,
      connections: stats.connections,
      flows: board.totals(),
      dropped: Object.values(stats.dropped).reduce((sum, n) => sum + n, 0),
    };
  };
  const peers = () => {
    const stats = new Map(gateway.stats().peers.map((peer) => [peer.publicKey, peer]));
    return gateway.peers().map((peer) => {
      const stat = stats.get(peer.publicKey);
      return {
        name: peer.name,
        publicKey: peer.publicKey,
        address: peer.address,
        endpoint: stat?.endpoint ? endpointText(unmappedEndpoint(stat.endpoint)) : null,
        sinceHandshakeMs: stat?.sinceHandshakeMs ?? null,
        up: stat?.rxBytes ?? 0,
        down: stat?.txBytes ?? 0,
        rate: rates.history(peer.publicKey),
      };
    });
  };

  const send = (event: string, data: unknown) => {
    const text = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const stream of streams) {
      if (stream.writableLength > MAX_PENDING_EVENT_BYTES) stream.destroy();
      else stream.write(text);
    }
  };
  const sendStats = () => send("stats", { status: status(), peers: peers(), progress: board.progress() });
  const unlisten = board.listen((event: BoardEvent) => send(event.type, event.flow));
  const ticker = setInterval(() => {
    try {
      rates.sample(gateway.stats().peers, Date.now());
      sendStats();
    } catch {
      // The server failed and closed: serve is stopping, and closes this page with it.
    }
  }, STATS_INTERVAL_MS);

  // A peer's name in a path, %-escapes decoded; one with a malformed escape names no peer.
  const pathName = (text: string): string => {
    try {
      return decodeURIComponent(text);
    } catch {
      throw new HttpError(404, `no peer ${JSON.stringify(text)}`);
    }
  };
  const peerNamed = (name: string): PeerRecord => {
    const peer = gateway.peers().find((candidate) => candidate.name === name);
    if (!peer) throw new HttpError(404, `no peer ${JSON.stringify(name)}`);
    return peer;
  };

  const api = async (request: IncomingMessage, response: ServerResponse, path: string, query: URLSearchParams): Promise<void> => {
    const { method } = request;
    const peerPath = /^\/api\/peers\/([^/]+)\/(config|qr\.svg|remove)$/.exec(path);
    if (method === "GET" && path === "/api/status") return json(response, 200, status());
    if (method === "GET" && path === "/api/peers") return json(response, 200, peers());
    if (method === "GET" && path === "/api/flows") return json(response, 200, board.flows());
    if (method === "GET" && path === "/api/capture") return json(response, 200, captures.state());
    if (method === "GET" && path === "/api/events") return openEvents(response);
    if (method === "GET" && peerPath?.[2] === "config") {
      const peer = peerNamed(pathName(peerPath[1]!));
      const headers: Record<string, string> = { "content-type": "text/plain; charset=utf-8" };
      if (query.has("download")) headers["content-disposition"] = `attachment; filename="${peer.name}.conf"`;
      return reply(response, 200, gateway.clientConfig(peer), headers);
    }
    if (method === "GET" && peerPath?.[2] === "qr.svg") {
      const svg = await qrCode(gateway.clientConfig(peerNamed(pathName(peerPath[1]!))), "svg");
      return reply(response, 200, svg, { "content-type": "image/svg+xml" });
    }
    if (method === "POST" && path === "/api/peers") {
      const name = (await jsonBody(request)).name;
      if (typeof name !== "string") throw new HttpError(400, `expected {"name": "…"}`);
      const peer = store.addPeer(name); // a StoreError (bad or taken name) is a 400
      gateway.syncPeers();
      sendStats();
      return json(response, 201, { name: peer.name, publicKey: peer.publicKey, address: peer.address, config: gateway.clientConfig(peer) });
    }
    if (method === "POST" && peerPath?.[2] === "remove") {
      const peer = peerNamed(pathName(peerPath[1]!));
      store.removePeer(peer.name);
      gateway.syncPeers();
      sendStats();
      return json(response, 200, { removed: peer.name });
    }
    if (method === "POST" && path === "/api/capture/start") {
      const name = (await jsonBody(request)).peer;
      if (name !== undefined && name !== null && typeof name !== "string") throw new HttpError(400, `expected {"peer": "NAME"} or {}`);
      return json(response, 200, await captures.start(name ? peerNamed(name) : undefined));
    }
    if (method === "POST" && path === "/api/capture/stop") return json(response, 200, await captures.stop());
    if (method === "GET" && path === "/api/capture.pcap") {
      const state = captures.state();
      if (!state.ready) throw new HttpError(404, "no finished capture");
      const stamp = new Date(state.startedAt!).toISOString().replace(/[:.]/g, "-");
      response.writeHead(200, { ...SECURITY_HEADERS, "content-type": "application/vnd.tcpdump.pcap", "content-disposition": `attachment; filename="wg-netstack-${stamp}.pcap"` });
      createReadStream(captures.file).on("error", () => response.destroy()).pipe(response);
      return;
    }
    throw new HttpError(path.startsWith("/api/") && KNOWN_PATHS.test(path) ? 405 : 404, `no ${method} ${path}`);
  };

  const openEvents = (response: ServerResponse) => {
    response.writeHead(200, { ...SECURITY_HEADERS, "content-type": "text/event-stream", connection: "keep-alive" });
    // The browser reconnects after 2 s if the stream breaks; the page then reloads its lists.
    response.write("retry: 2000\n\n");
    streams.add(response);
    response.on("close", () => streams.delete(response));
  };

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    let url: URL;
    try {
      url = new URL(request.url ?? "/", "http://localhost");
    } catch {
      // A target no URL can be made of ("//" reads as a host, and an empty one): it was a dropped connection.
      return reply(response, 400, "bad request target\n", { "content-type": "text/plain; charset=utf-8" });
    }
    const access = checkAccess(token, {
      method: request.method ?? "GET",
      path: url.pathname,
      queryToken: url.searchParams.get("token"),
      cookieHeader: request.headers.cookie,
      authorizationHeader: request.headers.authorization,
    });
    if (!access.allowed) return reply(response, access.status, `${access.why}\n`, { "content-type": "text/plain; charset=utf-8" });
    if (access.setCookie) {
      // Out of the address bar and the history.
      url.searchParams.delete("token");
      return reply(response, 303, "", { "set-cookie": tokenCookie(token), location: `${url.pathname}${url.search}` });
    }
    if (url.pathname === "/" && request.method === "GET") {
      const nonce = newToken();
      return reply(response, 200, pageHtml(token, nonce), { "content-type": "text/html; charset=utf-8", ...pagePolicy(nonce) });
    }
    try {
      await api(request, response, url.pathname, url.searchParams);
    } catch (error) {
      const status = error instanceof HttpError ? error.status : error instanceof StoreError ? 400 : error instanceof CaptureError ? 409 : 500;
      if (!response.headersSent) json(response, status, { error: (error as Error).message });
      else response.destroy();
    }
  };

  const http: HttpServer = createServer((request, response) => {
    handle(request, response).catch(() => response.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(options.port, options.host, () => {
      http.off("error", reject);
      resolve();
    });
  });
  const bound = http.address() as AddressInfo;
  const address = { host: bound.address, port: bound.port };
  const urlHost = parseIp(options.host)?.family === 6 ? `[${options.host}]` : options.host;

  return {
    address,
    url: `http://${urlHost}:${address.port}/?token=${token}`,
    async close() {
      clearInterval(ticker);
      unlisten();
      for (const stream of streams) stream.end();
      await captures.close();
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections?.();
      });
    },
  };
}

const KNOWN_PATHS = /^\/api\/(status|peers|flows|capture|events|capture\.pcap|capture\/(start|stop)|peers\/[^/]+\/(config|qr\.svg|remove))$/;

/** On every answer: nothing cached (it is live and private), no sniffing, no referrer (the address may hold the token). */
const SECURITY_HEADERS = { "cache-control": "no-store", "x-content-type-options": "nosniff", "referrer-policy": "no-referrer" };

/** The page runs only its own inline script and style (by nonce), loads nothing from elsewhere, and cannot be framed. */
function pagePolicy(nonce: string): Record<string, string> {
  return {
    "content-security-policy": `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  };
}

function reply(response: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { ...SECURITY_HEADERS, ...headers });
  response.end(body);
}

function json(response: ServerResponse, status: number, value: unknown): void {
  reply(response, status, JSON.stringify(value), { "content-type": "application/json" });
}

/** The request's JSON object body ({} when empty); a 400 or 413 otherwise. */
async function jsonBody(request: IncomingMessage): Promise<Record<string, unknown>> {
  // Bytes, counted and decoded whole: a character may be split between chunks.
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `a request body is at most ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return {};
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw new HttpError(400, "expected a JSON object");
}
