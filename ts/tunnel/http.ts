// HTTP through the tunnel: `http.Agent` / `https.Agent` whose sockets are TunnelSockets, and
// an undici `Agent` (the `connect` seam undici offers for any socket) for `fetch`. TLS runs
// over the tunnel socket with `tls.connect({ socket, servername })`, so certificates are
// checked against the same CAs as the runtime's own HTTPS (NODE_EXTRA_CA_CERTS included).

import http from "node:http";
import https from "node:https";
import { createRequire } from "node:module";
import { isIP } from "node:net";
import tls from "node:tls";
import type { Dispatcher } from "undici";
import type { TunnelConnectOptions, TunnelSocket } from "./socket.js";

/** The part of a tunnel HTTP needs. */
export interface SocketSource {
  connect(options: TunnelConnectOptions): TunnelSocket;
}

/** The host for `tunnel.connect`: URLs and http's options write IPv6 in brackets. */
const bare = (host: string) => host.replace(/^\[(.*)\]$/, "$1");

/** SNI names a host, never an address (RFC 6066 3). */
const serverName = (host: string) => (isIP(host) ? undefined : host);

/** An `http.Agent` whose connections go through the tunnel; keep-alive reuses them. */
export function tunnelHttpAgent(source: SocketSource, options: http.AgentOptions = {}): http.Agent {
  const agent = new http.Agent({ keepAlive: true, ...options });
  agent.createConnection = (connectOptions: http.ClientRequestArgs) =>
    source.connect({ port: Number(connectOptions.port) || 80, host: bare(connectOptions.host ?? connectOptions.hostname ?? "") }) as never;
  return agent;
}

/** An `https.Agent` whose TLS connections run over tunnel sockets. */
export function tunnelHttpsAgent(source: SocketSource, options: https.AgentOptions = {}): https.Agent {
  const agent = new https.Agent({ keepAlive: true, ...options });
  agent.createConnection = (connectOptions: https.RequestOptions) => {
    const host = bare(connectOptions.host ?? connectOptions.hostname ?? "");
    const socket = source.connect({ port: Number(connectOptions.port) || 443, host });
    const { servername, ...rest } = connectOptions as tls.ConnectionOptions;
    return tls.connect({ ...rest, socket, servername: servername || serverName(host) } as tls.ConnectionOptions) as never;
  };
  return agent;
}

type UndiciModule = typeof import("undici");
let undiciModule: UndiciModule | undefined;

/** npm's undici, loaded on first use: only fetch and the dispatcher need it. */
function undici(): UndiciModule {
  if (undiciModule) return undiciModule;
  try {
    // The package's own file: Bun maps the bare name "undici" to a built-in stand-in whose
    // fetch ignores `dispatcher` (it would dial outside the tunnel).
    undiciModule = createRequire(import.meta.url)("undici/index.js") as UndiciModule;
  } catch (error) {
    throw new Error("tunnel.fetch and tunnel.dispatcher need npm's `undici` (7 or later): npm install undici", { cause: error });
  }
  return undiciModule;
}

/**
 * How long a TLS handshake may take, as undici's own connector's default `connect.timeout`
 * (the TCP connect before it has the tunnel's `connectTimeout`).
 */
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** An undici `Agent` that dials through the tunnel: for `fetch(url, { dispatcher })` and undici's `request`. */
export function tunnelDispatcher(source: SocketSource): Dispatcher {
  const { Agent, errors } = undici();
  return new Agent({
    connect: (options, callback) => {
      const host = bare(options.hostname);
      const secure = options.protocol === "https:";
      const port = Number(options.port) || (secure ? 443 : 80);
      const socket = source.connect({ port, host });
      let done = false;
      let handshakeTimer: ReturnType<typeof setTimeout> | undefined;
      const finish = (error: Error | null, connected?: TunnelSocket | tls.TLSSocket) => {
        clearTimeout(handshakeTimer);
        if (done) return;
        done = true;
        if (error) callback(error, null);
        else callback(null, connected as never);
      };
      socket.once("error", (error) => finish(error));
      socket.once("connect", () => {
        if (!secure) return finish(null, socket);
        // `host` is what the certificate must name when there is no servername (an IP):
        // without it tls checks "localhost".
        const secured = tls.connect({ socket, host, servername: options.servername || serverName(host), ALPNProtocols: ["http/1.1"] });
        secured.once("secureConnect", () => finish(null, secured));
        secured.once("error", (error) => finish(error));
        // A server that takes the connection and never answers would hold the fetch forever.
        handshakeTimer = setTimeout(() => {
          finish(new errors.ConnectTimeoutError(`Connect Timeout Error (attempted address: ${host}:${port}, timeout: ${TLS_HANDSHAKE_TIMEOUT_MS}ms)`));
          secured.destroy();
          socket.destroy();
        }, TLS_HANDSHAKE_TIMEOUT_MS);
      });
    },
  });
}

/** `fetch` through the dispatcher: undici's own, so the versions always agree. */
export function tunnelFetch(dispatcher: Dispatcher, input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
  try {
    return undici().fetch(input as never, { ...(init as object), dispatcher } as never) as unknown as Promise<Response>;
  } catch (error) {
    return Promise.reject(error);
  }
}
