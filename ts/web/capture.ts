// Captures started from the web page: decrypted packets of every peer, or one, written
// as pcap to a private temporary folder (the packets are the peers' plain traffic) until
// stopped, then offered for download. One capture at a time; the last one is kept until
// the next starts or the gateway stops.

import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PacketListener } from "../gateway/gateway.js";
import { PcapWriter } from "../gateway/pcap.js";

/** A capture stops by itself past this many bytes of packets, so a forgotten one cannot fill the disk. */
export const CAPTURE_LIMIT_BYTES = 256 * 1024 * 1024;

export interface CaptureState {
  running: boolean;
  /** The peer captured, or none for all. */
  peer: string | null;
  startedAt: number | null;
  stoppedAt: number | null;
  packets: number;
  bytes: number;
  /** Why it stopped by itself, or why writing failed. */
  note: string | null;
  /** Whether there is a file to download. */
  ready: boolean;
}

export class Captures {
  readonly #tap: (listener: PacketListener) => () => void;
  readonly #dir = mkdtempSync(join(tmpdir(), "wg-netstack-capture-")); // 0700
  #writer: PcapWriter | undefined;
  #untap: (() => void) | undefined;
  #state: CaptureState = { running: false, peer: null, startedAt: null, stoppedAt: null, packets: 0, bytes: 0, note: null, ready: false };

  /** `tap` adds a packet listener to the gateway and returns its removal. */
  constructor(tap: (listener: PacketListener) => () => void) {
    this.#tap = tap;
  }

  get file(): string {
    return join(this.#dir, "capture.pcap");
  }

  state(): CaptureState {
    return { ...this.#state };
  }

  /** Starts capturing one peer's packets, or every peer's. Throws a CaptureError if one is running. */
  async start(peer?: { name: string; publicKey: string }): Promise<CaptureState> {
    if (this.#state.running) throw new CaptureError("a capture is already running");
    this.#state = { running: true, peer: peer?.name ?? null, startedAt: Date.now(), stoppedAt: null, packets: 0, bytes: 0, note: null, ready: false };
    let writer: PcapWriter;
    try {
      writer = await PcapWriter.open(this.file);
    } catch (error) {
      this.#state = { ...this.#state, running: false, note: `cannot write ${this.file}: ${(error as Error).message}` };
      throw new CaptureError(this.#state.note!);
    }
    this.#writer = writer;
    this.#untap = this.#tap((packet, key) => {
      if (peer && key !== peer.publicKey) return;
      if (this.#state.bytes + packet.length > CAPTURE_LIMIT_BYTES) {
        void this.stop(`stopped at ${CAPTURE_LIMIT_BYTES / 1024 / 1024} MiB`);
        return;
      }
      this.#state.packets++;
      this.#state.bytes += packet.length;
      writer.write(packet);
    });
    return this.state();
  }

  /** Stops the running capture; its file is then ready. Throws a CaptureError if none runs. */
  async stop(note?: string): Promise<CaptureState> {
    const writer = this.#writer;
    if (!writer) throw new CaptureError("no capture is running");
    this.#writer = undefined;
    this.#untap?.();
    this.#untap = undefined;
    this.#state.running = false;
    this.#state.stoppedAt = Date.now();
    await writer.close();
    const problems = [note, writer.error && `write failed: ${writer.error.message}`, writer.dropped > 0 && `${writer.dropped} packets not written (the disk fell behind)`];
    this.#state.note = problems.filter(Boolean).join("; ") || null;
    this.#state.ready = statSync(this.file, { throwIfNoEntry: false }) !== undefined;
    return this.state();
  }

  /** Stops any capture and deletes the folder. */
  async close(): Promise<void> {
    if (this.#writer) await this.stop();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** A capture request that cannot be done now (409). */
export class CaptureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CaptureError";
  }
}
