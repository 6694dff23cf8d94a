// What the main thread and the engine's worker say to each other besides events and
// commands: the first byte of each ring record from the main thread, the worker's
// configuration, and the few messages it posts (start-up, failure, exit).

import type { Limits } from "../../config.js";
import type { Cidr, Endpoint } from "../../ip.js";

/** The first byte of a record on the ring to the worker. */
export const RECORD = {
  /** Command bytes, more of the same batch to follow. */
  COMMANDS: 1,
  /** Command bytes that end a batch: the worker applies the batch at its next pump. */
  COMMANDS_END: 2,
  /** Close the socket and exit. */
  STOP: 3,
} as const;

/** What the worker needs to start its engine and bind its socket (structured-cloned). */
export interface WorkerConfig {
  privateKey: Uint8Array;
  host: string;
  port: number;
  mtu: number;
  tcpReceiveBuffer: number;
  tcpSendBuffer: number;
  acceptTcp: boolean;
  tap: boolean;
  limits: Limits;
  peers: { publicKey: Uint8Array; presharedKey?: Uint8Array; persistentKeepalive: number; endpoint?: Endpoint; allowedIps: Cidr[] }[];
}

/** Messages the worker posts (never per packet). */
export type WorkerMessage =
  | { kind: "ready"; address: Endpoint; publicKey: Uint8Array; peerIds: number[] }
  | { kind: "peer-refused"; index: number; message: string }
  | { kind: "start-failed"; name: string; message: string; code?: string }
  | { kind: "socket-error"; message: string }
  | { kind: "failed"; message: string; stderr: string }
  | { kind: "stopped" };
