// A UDP datagram a client sent through the tunnel, to any destination.

import type { Endpoint } from "../ip.js";

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

  /** @internal Made by the server. */
  constructor(data: Uint8Array, src: Endpoint, dst: Endpoint, peer: string, reply: (data: Uint8Array | string) => void) {
    this.data = data;
    this.src = src;
    this.dst = dst;
    this.peer = peer;
    this.#reply = reply;
  }

  /** Sends a datagram back to the client, from the address it sent to. */
  reply(data: Uint8Array | string): void {
    this.#reply(data);
  }
}
