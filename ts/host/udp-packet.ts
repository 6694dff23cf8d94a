// A UDP datagram a client sent through the tunnel, to any destination.

import type { Endpoint } from "../ip.js";
import type { UnreachableReason } from "../wasm/engine.js";

/** A UDP datagram a client sent through the tunnel, to any destination. */
export class UdpPacket {
  /** The payload. */
  readonly data: Uint8Array;
  /** The client's address and port inside the tunnel. */
  readonly src: Endpoint;
  /** The destination the client sent to. */
  readonly dst: Endpoint;
  /** Public key (base64) of the peer that sent it. */
  readonly peer: string;
  readonly #reply: (data: Uint8Array | string) => void;
  readonly #refuse: (why: UnreachableReason) => void;

  /** @internal Made by the server. */
  constructor(data: Uint8Array, src: Endpoint, dst: Endpoint, peer: string, reply: (data: Uint8Array | string) => void, refuse: (why: UnreachableReason) => void) {
    this.data = data;
    this.src = src;
    this.dst = dst;
    this.peer = peer;
    this.#reply = reply;
    this.#refuse = refuse;
  }

  /** Sends a datagram back to the client, from the address it sent to. */
  reply(data: Uint8Array | string): void {
    this.#reply(data);
  }

  /**
   * Answers with an ICMP (or ICMPv6) destination unreachable from the address it sent to, as
   * a closed port (`"port"`, the default), an unreachable host or network would: a connected
   * socket on the client's side gets `ECONNREFUSED`, `EHOSTUNREACH` or `ENETUNREACH`.
   */
  refuse(why: "port" | "host" | "net" = "port"): void {
    this.#refuse(why);
  }
}
