// Names a flow by its first bytes: the TLS server name (SNI) of a ClientHello, the Host
// of an HTTP/1 request, the question of a DNS query. Input comes from strangers and may
// be cut short or garbage: every function returns undefined then, never throws, and only
// returns text that is safe to print on a terminal.

/** The SNI host name in a TLS ClientHello (possibly split over several TLS records). */
export function tlsServerName(bytes: Uint8Array): string | undefined {
  const hello = handshakeBytes(bytes);
  if (hello?.[0] !== 1) return undefined; // 1 = ClientHello
  const reader = new Reader(hello, 4, 4 + uint(hello, 1, 3));
  reader.skip(2 + 32); // client version, random
  reader.skip(reader.u8()); // session id
  reader.skip(reader.u16()); // cipher suites
  reader.skip(reader.u8()); // compression methods
  const extensionsEnd = reader.offset + 2 + reader.u16();
  while (reader.ok && reader.offset + 4 <= extensionsEnd) {
    const type = reader.u16();
    const end = reader.offset + 2 + reader.u16();
    if (type === 0) {
      // server_name: a list of (type, name); type 0 is a host name.
      reader.skip(2);
      if (reader.u8() !== 0) return undefined;
      const name = reader.bytes(reader.u16());
      return name && end <= extensionsEnd ? hostName(ascii(name)) : undefined;
    }
    reader.offset = end;
  }
  return undefined;
}

/** The handshake messages carried by the leading TLS handshake records, joined. */
function handshakeBytes(bytes: Uint8Array): Uint8Array | undefined {
  const parts: Uint8Array[] = [];
  let offset = 0;
  while (offset + 5 <= bytes.length && bytes[offset] === 22 && bytes[offset + 1] === 3) {
    const length = uint(bytes, offset + 3, 2);
    parts.push(bytes.subarray(offset + 5, Math.min(bytes.length, offset + 5 + length)));
    offset += 5 + length;
  }
  if (parts.length === 0) return undefined;
  const joined = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return joined;
}

const REQUEST_LINE = /^[A-Z]{3,10} [\x21-\x7e]+ HTTP\/1\.[01]\r\n/;

/** The Host header of an HTTP/1 request, from the bytes seen so far (the headers must be complete up to it). */
export function httpHost(bytes: Uint8Array): string | undefined {
  const text = ascii(bytes.subarray(0, 8192));
  if (!REQUEST_LINE.test(text)) return undefined;
  const headersEnd = text.indexOf("\r\n\r\n");
  const lines = (headersEnd < 0 ? text : text.slice(0, headersEnd)).split("\r\n");
  for (const line of lines.slice(1)) {
    const match = /^host:[ \t]*([^ \t]*)[ \t]*$/i.exec(line);
    if (match && (headersEnd >= 0 || text.includes(`${line}\r\n`))) return hostName(match[1]!);
  }
  return undefined;
}

const DNS_TYPES: Record<number, string> = {
  1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV", 64: "SVCB", 65: "HTTPS", 255: "ANY",
};

/** The first question of a DNS query, like "example.com AAAA". */
export function dnsQuestion(bytes: Uint8Array): string | undefined {
  if (bytes.length < 12 || (bytes[2]! & 0x80) !== 0 || uint(bytes, 4, 2) === 0) return undefined; // a query with a question
  const reader = new Reader(bytes, 12, bytes.length);
  const labels: string[] = [];
  for (;;) {
    const length = reader.u8();
    if (!reader.ok || length > 63) return undefined; // no compression in a question
    if (length === 0) break;
    const label = reader.bytes(length);
    if (!label) return undefined;
    labels.push(dnsLabel(label));
  }
  const type = reader.u16();
  if (!reader.ok) return undefined;
  return `${labels.length ? labels.join(".") : "."} ${DNS_TYPES[type] ?? `TYPE${type}`}`;
}

/** A DNS label as dig prints it: letters, digits, "-" and "_" as they are, anything else as \DDD. */
function dnsLabel(label: Uint8Array): string {
  let text = "";
  for (const byte of label) {
    const char = String.fromCharCode(byte);
    text += /[A-Za-z0-9_-]/.test(char) ? char : `\\${byte.toString().padStart(3, "0")}`;
  }
  return text;
}

/** A host name or IP (with an optional port) made of the characters names use; else undefined. */
function hostName(text: string): string | undefined {
  return /^[A-Za-z0-9._:[\]*-]{1,255}$/.test(text) ? text : undefined;
}

// Latin-1 maps each byte to one character, so offsets in the text are offsets in the bytes.
const latin1 = new TextDecoder("latin1");
const ascii = (bytes: Uint8Array) => latin1.decode(bytes);
const uint = (bytes: Uint8Array, offset: number, size: number) => {
  let value = 0;
  for (let i = 0; i < size; i++) value = value * 256 + (bytes[offset + i] ?? 0);
  return value;
};

/** Reads big-endian fields up to `end`; reading past it clears `ok` instead of throwing. */
class Reader {
  ok = true;
  constructor(readonly data: Uint8Array, public offset: number, readonly end: number) {}

  #take(size: number): number {
    const at = this.offset;
    this.offset += size;
    if (this.offset > Math.min(this.end, this.data.length)) this.ok = false;
    return at;
  }
  u8(): number {
    return this.ok ? uint(this.data, this.#take(1), 1) : 0;
  }
  u16(): number {
    return this.ok ? uint(this.data, this.#take(2), 2) : 0;
  }
  skip(size: number): void {
    this.#take(size);
  }
  bytes(size: number): Uint8Array | undefined {
    const at = this.#take(size);
    return this.ok ? this.data.subarray(at, at + size) : undefined;
  }
}
