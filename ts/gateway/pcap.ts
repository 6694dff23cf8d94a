// Writes decrypted inner packets as a classic pcap file (what tcpdump -w writes), which
// Wireshark and tshark open. LINKTYPE_RAW: each record is a bare IPv4 or IPv6 packet,
// told apart by its version nibble, so one file holds both.

import { createWriteStream, type WriteStream } from "node:fs";

const LINKTYPE_RAW = 101;
const SNAPLEN = 65535;
/** Bytes waiting for the disk beyond which packets are dropped rather than held in memory. */
const MAX_PENDING = 16 * 1024 * 1024;

export class PcapWriter {
  readonly #stream: WriteStream;
  #dropped = 0;
  #error: Error | undefined;

  private constructor(stream: WriteStream) {
    this.#stream = stream;
    stream.on("error", (error) => (this.#error ??= error));
  }

  /** Creates (or truncates) `path`, readable by its owner only: it holds decrypted traffic. Rejects if it cannot be opened. */
  static async open(path: string): Promise<PcapWriter> {
    const stream = createWriteStream(path, { mode: 0o600 });
    await new Promise<void>((resolve, reject) => stream.once("open", () => resolve()).once("error", reject));
    const writer = new PcapWriter(stream);
    const header = new DataView(new ArrayBuffer(24));
    header.setUint32(0, 0xa1b2c3d4, true); // magic: microsecond timestamps, little-endian fields
    header.setUint16(4, 2, true); // version 2.4
    header.setUint16(6, 4, true);
    header.setUint32(16, SNAPLEN, true);
    header.setUint32(20, LINKTYPE_RAW, true);
    stream.write(new Uint8Array(header.buffer));
    return writer;
  }

  /** Packets not written because the disk fell behind. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Why writing failed, if it did (later packets are then dropped). */
  get error(): Error | undefined {
    return this.#error;
  }

  /** Appends one IP packet, stamped `timeMs` (ms since the epoch). */
  write(packet: Uint8Array, timeMs = Date.now()): void {
    if (this.#error || this.#stream.writableLength > MAX_PENDING) {
      this.#dropped++;
      return;
    }
    const captured = Math.min(packet.length, SNAPLEN);
    const record = new Uint8Array(16 + captured);
    const view = new DataView(record.buffer);
    const micros = Math.round(timeMs * 1000);
    view.setUint32(0, Math.floor(micros / 1e6), true);
    view.setUint32(4, micros % 1e6, true);
    view.setUint32(8, captured, true);
    view.setUint32(12, packet.length, true);
    record.set(packet.subarray(0, captured), 16);
    this.#stream.write(record);
  }

  /** Flushes and closes the file. */
  close(): Promise<void> {
    return new Promise((resolve) => this.#stream.end(() => resolve()));
  }
}
