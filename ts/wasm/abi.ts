// Generated from crates/engine/src/abi.rs by `node build.mjs`: do not edit.
// The contract with the wasm engine; what each record holds is documented there.

export const ADDRESS_SIZE = 19;

/** The byte that opens each event in the log. */
export const EVENT = {
  DATAGRAM: 1,
  TCP_INCOMING: 2,
  TCP_DATA: 3,
  TCP_EOF: 4,
  TCP_WRITABLE: 5,
  TCP_CLOSED: 6,
  UDP: 7,
  TCP_ESTABLISHED: 8,
  UNKNOWN_PEER: 9,
  INNER_PACKET: 10,
  ECHO_REPLY: 11,
} as const;

/** The byte that opens each command the host writes. */
export const COMMAND = {
  SEND: 1,
  CONSUMED: 2,
  ACCEPT: 3,
  REFUSE: 4,
  SHUTDOWN: 5,
  ABORT: 6,
  DISCARD: 7,
} as const;

/** Negative returns of the engine's calls. */
export const ERROR = {
  INVALID: -1,
  UNKNOWN_CONNECTION: -2,
  NOT_WRITABLE: -3,
  UNADDRESSABLE: -4,
  NO_ROUTE: -5,
  TOO_BIG: -6,
  NOT_STARTED: -7,
  LIMIT: -8,
} as const;

/** How a TCP connection ended, by the number in TCP_CLOSED. */
export const CLOSE_REASONS = ["closed", "reset", "refused", "aborted", "timeout", "host-unreachable", "net-unreachable"] as const;

/** The dropped-packet counters, in the order the stats hold them. */
export const DROP_REASONS = ["malformed", "authFailed", "unknownPeer", "replay", "noSession", "underLoad", "sourceNotAllowed", "innerMalformed", "unsupported", "noRoute", "noEndpoint"] as const;

/** The numbers of a peer's stats record, in order. */
export const PEER_STATS = ["sinceHandshakeMs", "txBytes", "rxBytes"] as const;

/** The server's TCP numbers, in order. */
export const TCP_TOTALS = ["refusedOverLimit", "refusedNotAccepting", "resetUnknown", "retransmittedSegments", "timeouts", "bufferedBytes", "meanRttMs"] as const;

/** The server's UDP numbers, in order. */
export const UDP_TOTALS = ["flows", "refusedOverLimit"] as const;

/** One connection's numbers, in order. */
export const CONNECTION_STATS = ["retransmittedSegments", "timeouts", "tailProbes", "rttMs", "congestionWindow", "bytesInFlight", "bandwidth", "pacingRate", "peerWindow"] as const;

