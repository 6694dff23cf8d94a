// A stub resolver (RFC 1034 5.3.1) that asks the config's DNS servers through the tunnel:
// A and AAAA questions over UDP, again over TCP when the answer is truncated (RFC 1035
// 4.2.1, RFC 7766), answers cached for their TTL (RFC 1035 3.2.1), empty ones and NXDOMAINs for their
// zone's SOA's (RFC 2308 5). Query ids and source ports are random (RFC 5452).

import { endpointText, formatIp, parseIp, sameEndpoint, type Endpoint, type IpFamily } from "../ip.js";
import { ConnectionError, type TcpConnection } from "../host/tcp-connection.js";
import { TunnelError } from "./errors.js";
import type { UdpListener } from "./udp.js";

/** What the resolver needs from its tunnel. */
export interface DnsTransport {
  /** Our tunnel address of a family, if we have one. */
  localAddress(family: IpFamily): string | undefined;
  /** Sends one UDP datagram through the tunnel. */
  sendUdp(data: Uint8Array, from: Endpoint, to: Endpoint): void;
  /** Hands what arrives at `local` to `listener` until the returned function is called; throws if that port is taken. */
  listenUdp(local: Endpoint, listener: UdpListener): () => void;
  /** Opens a TCP connection through the tunnel. */
  connectTcp(to: Endpoint): Promise<TcpConnection>;
}

/** Options of `tunnel.resolve()`. */
export interface ResolveOptions {
  /** 4 for A records only, 6 for AAAA only, 0 (default) for both, IPv4 first. */
  family?: 0 | 4 | 6;
}

const TYPE_A = 1;
const TYPE_AAAA = 28;
const TYPE_SOA = 6;
const CLASS_IN = 1;
const RCODE_NXDOMAIN = 3;
/** How long to wait for one server's UDP answer before asking the next (or again). */
const UDP_WAIT_MS = 2_000;
/** Each server is asked this many times over UDP. */
const UDP_ATTEMPTS = 2;
const TCP_WAIT_MS = 5_000;
/** The most an answer stays cached, whatever its TTL says. */
const MAX_TTL_S = 3_600;
const CACHE_LIMIT = 1_024;
/** What a server's ICMP destination unreachable told us, by the code it gives. */
const UNREACHABLE_TEXT = {
  ECONNREFUSED: "nothing listens there (ICMP port unreachable)",
  EHOSTUNREACH: "host unreachable (ICMP)",
  ENETUNREACH: "network unreachable (ICMP)",
} as const;

interface Answer {
  addresses: string[];
  /** How long it may be kept, in seconds (0: not at all). */
  ttl: number;
  /** An NXDOMAIN: the name does not exist, told so (and cached, RFC 2308 5, for its SOA's say). */
  missing?: string;
}

/** Resolves names through a tunnel; see {@link DnsResolver.resolve}. */
export class DnsResolver {
  readonly #servers: string[];
  readonly #search: string[];
  readonly #transport: DnsTransport;
  readonly #cache = new Map<string, Answer & { expires: number }>();
  readonly #asking = new Map<string, Promise<Answer>>();

  /** `search`: the config's search domains (`DNS` entries that are names), tried as resolv.conf(5)'s `search` is. */
  constructor(servers: string[], transport: DnsTransport, search: string[] = []) {
    this.#servers = servers;
    this.#transport = transport;
    this.#search = search.map((domain) => domain.replace(/\.$/, "").toLowerCase());
  }

  /**
   * The addresses of `name` (an IP literal comes back as it is); rejects with ENOTFOUND or
   * ETIMEDOUT. A name without a trailing dot is also tried in each search domain, as the
   * system's resolver does with resolv.conf's `search` (ndots 1): a single label there
   * first, a dotted name as it is first. Only "not found" moves on to the next try.
   */
  async resolve(name: string, options: ResolveOptions = {}): Promise<string[]> {
    const family = options.family ?? 0;
    const literal = parseIp(name);
    if (literal) return family === 0 || family === literal.family ? [formatIp(literal)] : notFound(name, `is an IPv${literal.family} address, not IPv${family}`);
    if (this.#servers.length === 0) return notFound(name, "cannot be resolved: the config has no DNS servers");
    const bare = name.replace(/\.$/, "").toLowerCase();
    if (!carried(bare)) return notFound(name, "is not a name a DNS query can carry (labels of 1 to 63 bytes, 255 in all)");
    const searched = name.endsWith(".") ? [] : this.#search.map((domain) => `${bare}.${domain}`).filter(carried);
    const tries = bare.includes(".") ? [bare, ...searched] : [...searched, bare];
    let asGiven: unknown;
    for (const candidate of tries) {
      try {
        return await this.#resolveName(candidate, candidate === bare ? name : candidate, family);
      } catch (error) {
        if ((error as { code?: string }).code !== "ENOTFOUND") throw error;
        if (candidate === bare) asGiven = error;
      }
    }
    throw asGiven; // every try was "not found": told for the name as given
  }

  /** The A and/or AAAA records of one fully qualified name (`shown` in errors). */
  async #resolveName(name: string, shown: string, family: 0 | 4 | 6): Promise<string[]> {
    const types = family === 4 ? [TYPE_A] : family === 6 ? [TYPE_AAAA] : [TYPE_A, TYPE_AAAA];
    const results = await Promise.allSettled(types.map((type) => this.#lookup(name, type)));
    const addresses = results.flatMap((result) => (result.status === "fulfilled" ? result.value : []));
    if (addresses.length > 0) return addresses;
    const failure = results.find((result): result is PromiseRejectedResult => result.status === "rejected");
    if (failure) throw failure.reason;
    return notFound(shown, `has no ${family === 4 ? "A" : family === 6 ? "AAAA" : "A or AAAA"} records`);
  }

  async #lookup(name: string, type: number): Promise<string[]> {
    const key = `${type} ${name}`;
    const cached = this.#cache.get(key);
    if (cached && cached.expires > Date.now()) return addressesOf(cached, name);
    // Callers wanting the same records at once share one question.
    let asking = this.#asking.get(key);
    if (!asking) {
      asking = this.#ask(name, type).finally(() => this.#asking.delete(key));
      this.#asking.set(key, asking);
    }
    const answer = await asking;
    // An empty answer or an NXDOMAIN is kept only for its zone's SOA's say (RFC 2308 5); without one, asked again.
    if (answer.addresses.length > 0 || answer.ttl > 0) {
      if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
      this.#cache.set(key, { ...answer, expires: Date.now() + Math.min(answer.ttl, MAX_TTL_S) * 1000 });
    }
    return addressesOf(answer, name);
  }

  /** Asks each server in turn; an answer (an NXDOMAIN too) is final, silence or a failure moves on. */
  async #ask(name: string, type: number): Promise<Answer> {
    let last: TunnelError | undefined;
    for (const server of this.#servers) {
      for (let attempt = 0; attempt < UDP_ATTEMPTS; attempt++) {
        try {
          return await this.#askServer(server, name, type);
        } catch (error) {
          if (!(error instanceof TunnelError)) throw error;
          last = error;
          // A server that answers badly, or whose TCP fails after its UDP answered, is not asked again.
          if (error.code !== "ETIMEDOUT" || error instanceof TcpFailure) break;
        }
      }
    }
    throw last ?? new TunnelError("ENOTFOUND", `${name}: no DNS server to ask`, { syscall: "query", address: name });
  }

  async #askServer(server: string, name: string, type: number): Promise<Answer> {
    const family = parseIp(server)!.family;
    const localHost = this.#transport.localAddress(family);
    if (!localHost) throw new TunnelError("ENETUNREACH", `DNS server ${server}: we have no IPv${family} tunnel address`, { syscall: "query", address: server });
    const id = randomId();
    const query = encodeQuery(id, name, type);
    const reply = await this.#udp(query, localHost, { host: server, port: 53 }, id);
    const parsed = parseReply(reply, id, name, type);
    if (!parsed.truncated) return answerOf(parsed, name, server);
    const full = parseReply(await this.#tcp(query, { host: server, port: 53 }), id, name, type, true);
    return answerOf(full, name, server);
  }

  /** Asks from a random source port (RFC 5452 9.2), another one when it is taken. */
  #udp(query: Uint8Array, localHost: string, server: Endpoint, id: number): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      let local: Endpoint = { host: localHost, port: 0 };
      const timer = setTimeout(() => {
        stop?.();
        reject(new TunnelError("ETIMEDOUT", `DNS server ${server.host}: no answer within ${UDP_WAIT_MS} ms`, { syscall: "query", address: server.host }));
      }, UDP_WAIT_MS);
      const done = () => {
        clearTimeout(timer);
        stop?.();
      };
      const listener: UdpListener = {
        message: (data, from) => {
          // Only the server's answer to this question counts (RFC 5452 9.1).
          if (!sameEndpoint(from, server) || data.length < 12 || ((data[0]! << 8) | data[1]!) !== id) return;
          done();
          resolve(data);
        },
        // No one listens there (or cannot be reached): said at once, as Node's resolver does.
        unreachable: (to, code) => {
          if (!sameEndpoint(to, server)) return;
          done();
          reject(new TunnelError(code, `DNS server ${endpointText(server)}: ${UNREACHABLE_TEXT[code]}`, { syscall: "query", address: server.host }));
        },
      };
      let stop: (() => void) | undefined;
      for (let attempt = 0; !stop; attempt++) {
        local = { host: localHost, port: 49152 + Math.floor(Math.random() * 16384) };
        try {
          stop = this.#transport.listenUdp(local, listener);
        } catch (error) {
          if (attempt >= 16) throw error;
        }
      }
      try {
        this.#transport.sendUdp(query, local, server);
      } catch (error) {
        done();
        reject(new TunnelError("ENETUNREACH", `DNS server ${server.host}: ${(error as Error).message}`, { syscall: "query", address: server.host, cause: error }));
      }
    });
  }

  /**
   * RFC 1035 4.2.2: over TCP a message goes with a two-byte length before it. The connect,
   * the question and the answer together get TCP_WAIT_MS; a failure keeps its code
   * (ECONNREFUSED for a closed port), silence is ETIMEDOUT.
   */
  async #tcp(query: Uint8Array, server: Endpoint): Promise<Uint8Array> {
    const details = { syscall: "query", address: server.host };
    const connecting = this.#transport.connectTcp(server);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TcpFailure("ETIMEDOUT", `DNS server ${server.host} over TCP: no answer within ${TCP_WAIT_MS} ms`, details)), TCP_WAIT_MS);
    });
    let answered = false;
    try {
      const answer = await Promise.race([exchange(connecting, query), timeout]);
      answered = true;
      return answer;
    } catch (error) {
      if (error instanceof TcpFailure) throw error;
      const code = error instanceof TunnelError || error instanceof ConnectionError ? error.code : "ETIMEDOUT";
      throw new TcpFailure(code, `DNS server ${server.host} over TCP: ${(error as Error).message}`, { ...details, cause: error });
    } finally {
      clearTimeout(timer);
      // Closed once answered; reset if given up on, even when its connect completes later.
      void connecting.then((connection) => (answered ? void connection.close() : connection.abort()), () => {});
    }
  }
}

/** A failure of the TCP leg of a question (its server answered over UDP). */
class TcpFailure extends TunnelError {}

/** Writes the framed question on the connection once open, and reads the framed answer. */
async function exchange(connecting: Promise<TcpConnection>, query: Uint8Array): Promise<Uint8Array> {
  const connection = await connecting;
  const framed = new Uint8Array(2 + query.length);
  framed.set([query.length >> 8, query.length & 0xff]);
  framed.set(query, 2);
  await connection.write(framed);
  let received = new Uint8Array(0);
  for (;;) {
    const need = received.length >= 2 ? 2 + ((received[0]! << 8) | received[1]!) : Infinity;
    if (received.length >= need) return received.subarray(2, need);
    const chunk = await connection.read();
    if (chunk.length === 0) throw new Error("the server closed before its whole answer");
    const joined = new Uint8Array(received.length + chunk.length);
    joined.set(received);
    joined.set(chunk, received.length);
    received = joined;
  }
}

/** True when a query can carry `name` (RFC 1035 2.3.4): labels of 1 to 63 bytes, 255 bytes in all on the wire. */
function carried(name: string): boolean {
  const sizes = name.split(".").map((label) => new TextEncoder().encode(label).length);
  return sizes.every((size) => size >= 1 && size <= 63) && sizes.reduce((sum, size) => sum + 1 + size, 1) <= 255;
}

function notFound(name: string, why: string): never {
  throw new TunnelError("ENOTFOUND", `${name} ${why}`, { syscall: "getaddrinfo", address: name });
}

function randomId(): number {
  const bytes = crypto.getRandomValues(new Uint8Array(2));
  return (bytes[0]! << 8) | bytes[1]!;
}

/** A standard query with recursion desired (RFC 1035 4.1.1). */
export function encodeQuery(id: number, name: string, type: number): Uint8Array {
  const labels = name.split(".").map((label) => new TextEncoder().encode(label));
  const bytes = new Uint8Array(12 + labels.reduce((sum, label) => sum + 1 + label.length, 1) + 4);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, id);
  view.setUint16(2, 0x0100); // RD
  view.setUint16(4, 1); // QDCOUNT
  let at = 12;
  for (const label of labels) {
    bytes[at++] = label.length;
    bytes.set(label, at);
    at += label.length;
  }
  bytes[at++] = 0;
  view.setUint16(at, type);
  view.setUint16(at + 2, CLASS_IN);
  return bytes;
}

interface Reply {
  rcode: number;
  truncated: boolean;
  addresses: string[];
  /** The addresses' smallest TTL; for no addresses, how long the authority's SOA lets that be kept (0 without one). */
  ttl: number;
}

/** Reads a reply to our question (`overTcp`: it came over TCP, whole); throws a TunnelError for anything that is not one. */
export function parseReply(data: Uint8Array, id: number, name: string, type: number, overTcp = false): Reply {
  const bad = (why: string) => new TunnelError("ENOTFOUND", `${name}: bad DNS reply (${why})`, { syscall: "query", address: name });
  if (data.length < 12) throw bad("too short");
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const flags = view.getUint16(2);
  if (view.getUint16(0) !== id || !(flags & 0x8000)) throw bad("not an answer to our query");
  // RFC 5452 9.1: the answer to the question we asked, echoed as its one question (names
  // compare without case: a server may answer in other case, RFC 4343).
  const asked = encodeQuery(id, name, type).subarray(12);
  if (view.getUint16(4) !== 1 || !sameIgnoringCase(data.subarray(12, 12 + asked.length), asked)) throw bad("not an answer to our question");
  // A truncated UDP answer is asked again over TCP, so its records are not read: a server may
  // cut it anywhere, in the middle of a record, with the counts of the whole (RFC 1035 4.2.1).
  if (flags & 0x0200 && !overTcp) return { rcode: flags & 0x000f, truncated: true, addresses: [], ttl: 0 };
  const answers = view.getUint16(6);
  let at = 12 + asked.length;
  const addresses: string[] = [];
  let ttl = MAX_TTL_S;
  for (let i = 0; i < answers; i++) {
    at = skipName(data, at, bad);
    if (at + 10 > data.length) throw bad("answer cut short");
    const rrType = view.getUint16(at);
    const rrClass = view.getUint16(at + 2);
    const rrTtl = ttlAt(view, at + 4);
    const length = view.getUint16(at + 8);
    at += 10;
    if (at + length > data.length) throw bad("record cut short");
    // CNAMEs lead to the records that follow them in the same answer; take every A/AAAA.
    if (rrClass === CLASS_IN && rrType === type && length === (type === TYPE_A ? 4 : 16)) {
      addresses.push(formatIp(data.slice(at, at + length)));
      ttl = Math.min(ttl, rrTtl);
    }
    at += length;
  }
  if (addresses.length === 0) ttl = negativeTtl(data, at, view.getUint16(8));
  return { rcode: flags & 0x000f, truncated: false, addresses, ttl };
}

/**
 * How long an answer without records may be kept (RFC 2308 5): the smaller of the TTL of the
 * SOA in the authority section (from `at`, `count` records) and its MINIMUM; 0 without one,
 * or when the section cannot be read.
 */
function negativeTtl(data: Uint8Array, at: number, count: number): number {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const bad = () => new Error("bad authority section");
  try {
    for (let i = 0; i < count; i++) {
      at = skipName(data, at, bad);
      if (at + 10 > data.length) return 0;
      const length = view.getUint16(at + 8);
      const rdata = at + 10;
      if (rdata + length > data.length) return 0;
      if (view.getUint16(at) === TYPE_SOA && view.getUint16(at + 2) === CLASS_IN) {
        const fields = skipName(data, skipName(data, rdata, bad), bad); // MNAME, RNAME
        if (fields + 20 > rdata + length) return 0;
        return Math.min(ttlAt(view, at + 4), ttlAt(view, fields + 16)); // TTL, MINIMUM
      }
      at = rdata + length;
    }
  } catch {
    // An unreadable authority section only means nothing is cached.
  }
  return 0;
}

function answerOf(reply: Reply, name: string, server: string): Answer {
  if (reply.rcode === RCODE_NXDOMAIN) return { addresses: [], ttl: reply.ttl, missing: `${name} does not exist (NXDOMAIN from ${server})` };
  if (reply.rcode !== 0) throw new TunnelError("ENOTFOUND", `${name}: DNS server ${server} failed (rcode ${reply.rcode})`, { syscall: "query", address: name });
  return { addresses: reply.addresses, ttl: reply.ttl };
}

/** The answer's addresses; ENOTFOUND for an NXDOMAIN. */
function addressesOf(answer: Answer, name: string): string[] {
  if (answer.missing) throw new TunnelError("ENOTFOUND", answer.missing, { syscall: "query", address: name });
  return answer.addresses;
}

/** A TTL: one with its top bit set counts as 0 (RFC 2181 8), not as 68 years. */
function ttlAt(view: DataView, at: number): number {
  const ttl = view.getUint32(at);
  return ttl >= 0x8000_0000 ? 0 : ttl;
}

/** Equal bytes, ASCII letters compared without case. */
function sameIgnoringCase(a: Uint8Array, b: Uint8Array): boolean {
  const lower = (byte: number) => (byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte);
  return a.length === b.length && a.every((byte, i) => lower(byte) === lower(b[i]!));
}

/** The offset after a (possibly compressed, RFC 1035 4.1.4) name. */
function skipName(data: Uint8Array, at: number, bad: (why: string) => Error): number {
  for (;;) {
    if (at >= data.length) throw bad("name runs past the end");
    const length = data[at]!;
    if (length === 0) return at + 1;
    if ((length & 0xc0) === 0xc0) return at + 2;
    if (length > 63) throw bad("bad label");
    at += 1 + length;
  }
}
