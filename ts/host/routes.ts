// The host's copy of the engine's cryptokey routing table (crates/engine/src/allowed_ips.rs),
// kept only to answer "does any peer's allowedIps hold this address?" at the call site:
// UDP sends and pings are commands the engine carries out at its next pump, yet a send with
// no route must still throw where it is made, as it did when it was a call. Same rules as
// the engine: a prefix is keyed by its network (host bits ignored), a later allow of the same
// prefix takes it over, and removing a peer takes every prefix it holds.

import { parseIp, type Cidr, type Ip } from "../ip.js";

export class Routes {
  /** "family/prefix/network bytes" to the peer that holds it. */
  readonly #prefixes = new Map<string, number>();
  /** How many prefixes of each length each family holds: the lengths a lookup must try. */
  readonly #lengths = { 4: new Map<number, number>(), 6: new Map<number, number>() };
  /** Answers by host text, since the last change (a relay sends to a few addresses, over and over). */
  readonly #answers = new Map<string, boolean>();

  /** Routes `cidr` to `peer`, as the engine's allow does. */
  allow(peer: number, cidr: Cidr): void {
    const key = prefixKey(cidr, cidr.prefix);
    if (!this.#prefixes.has(key)) {
      const lengths = this.#lengths[cidr.family];
      lengths.set(cidr.prefix, (lengths.get(cidr.prefix) ?? 0) + 1);
    }
    this.#prefixes.set(key, peer);
    this.#answers.clear();
  }

  /** Forgets every prefix `peer` holds. */
  removePeer(peer: number): void {
    for (const [key, holder] of this.#prefixes) {
      if (holder !== peer) continue;
      this.#prefixes.delete(key);
      const [family, prefix] = key.split("/").map(Number) as [4 | 6, number];
      const lengths = this.#lengths[family];
      const left = lengths.get(prefix)! - 1;
      if (left === 0) lengths.delete(prefix);
      else lengths.set(prefix, left);
    }
    this.#answers.clear();
  }

  /** True when some peer's allowedIps hold `host` (an IP literal). */
  reaches(host: string): boolean {
    let answer = this.#answers.get(host);
    if (answer === undefined) {
      const ip = parseIp(host);
      answer = ip !== undefined && this.#holds(ip);
      if (this.#answers.size >= 1024) this.#answers.clear();
      this.#answers.set(host, answer);
    }
    return answer;
  }

  #holds(ip: Ip): boolean {
    for (const prefix of this.#lengths[ip.family].keys()) {
      if (this.#prefixes.has(prefixKey(ip, prefix))) return true;
    }
    return false;
  }
}

/** The network of `ip`/`prefix` as a key: the bits past the prefix are zeroed. */
function prefixKey(ip: Ip, prefix: number): string {
  let key = `${ip.family}/${prefix}/`;
  for (let i = 0; i < ip.bytes.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - 8 * i));
    key += `${ip.bytes[i]! & (0xff00 >> bits) & 0xff}.`;
  }
  return key;
}
