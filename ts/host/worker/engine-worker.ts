// The engine's thread (`threads: 1`): the wasm engine, the UDP socket, the clock and the
// timer live here; the main thread keeps the Server and the user's code. What crosses:
//
//   main → worker  ring `toWorker`: the command records (the generated ABI's bytes: the
//                  connections', UDP sends, pings, keepalives; SEND and UDP_SEND carrying the
//                  payload), in chunks; a batch is applied whole.
//   worker → main  ring `toMain`: every event but DATAGRAM, as its record in the event log
//                  (TCP_DATA carrying the payload), read there with the generated readEvent.
//   both ways      the control block (control.ts): the calls that answer at once.
//
// Datagrams never leave this thread. The worker never waits for the main thread: when the
// events ring is full it keeps the events it has and stops pumping until there is room: the
// socket's datagrams wait in a queue here (inboundLimit of them, then dropped and counted
// as `queueFull`, as a full socket buffer would lose them) and TCP windows stop opening
// (backpressure).

import type { Endpoint } from "../../ip.js";
import { defaultRuntime } from "../../runtime/index.js";
import type { DatagramSocket } from "../../runtime/types.js";
import { workerContext } from "../../runtime/worker.js";
import { Engine, pooledCopy, type Datagram } from "../../wasm/engine.js";
import { EVENT } from "../../wasm/abi.js";
import { ControlBlock } from "./control.js";
import { Ring } from "./ring.js";
import { RECORD, type WorkerConfig, type WorkerMessage } from "./protocol.js";

const context = workerContext();
if (context) void run(context);

async function run(context: NonNullable<ReturnType<typeof workerContext>>): Promise<void> {
  const { config, inboundLimit, toWorker, toMain, control } = context.data as { config: WorkerConfig; inboundLimit: number; toWorker: SharedArrayBuffer; toMain: SharedArrayBuffer; control: SharedArrayBuffer };
  const post = (message: WorkerMessage) => context.post(message);
  const runtime = defaultRuntime();
  const clock = runtime.clock;
  const commandsIn = new Ring(toWorker);
  const eventsOut = new Ring(toMain);
  const controlBlock = new ControlBlock(control);
  const engine = new Engine();
  let socket: DatagramSocket | undefined;
  let stopping = false;
  /** The main thread sent STOP: pump once more (its last commands), then stop. */
  let stopAsked = false;
  let scheduled = false;
  let timer: unknown;
  const inbound: Datagram[] = [];
  /** Datagrams dropped because `inbound` was full (the main thread behind): stats().dropped.queueFull. */
  let queueFull = 0;
  /** Events that did not fit in the ring yet, in order. */
  const overflow: Uint8Array[] = [];
  /** Chunks of a command batch not yet complete. */
  const pendingCommands: Uint8Array[] = [];
  let wrote = false;

  const fail = (error: unknown) => {
    if (stopping) return;
    post({ kind: "failed", message: error instanceof Error ? error.message : String(error), stderr: engine.stderr });
    stop();
  };
  const stop = () => {
    if (stopping) return;
    stopping = true;
    if (timer !== undefined) clock.clearTimer(timer);
    // The loops waiting for commands and calls see `stopping` now, not at their next timeout.
    commandsIn.notify();
    controlBlock.wake();
    // The last datagrams (close()'s RSTs) may still be on their way into the socket.
    clock.defer(() => {
      void (socket ? socket.close() : Promise.resolve()).then(() => {
        post({ kind: "stopped" });
        context.close();
      });
    });
  };

  const forward = (record: Uint8Array) => {
    if (overflow.length === 0 && eventsOut.write(record.length, (bytes, at) => bytes.set(record, at))) {
      wrote = true;
      return;
    }
    overflow.push(record.slice());
  };
  /** TCP_DATA over this is cut into several events, so each fits a ring record. */
  const maxData = Math.min(256 * 1024, eventsOut.maxRecord - 16);
  const forwardEvent = (record: Uint8Array) => {
    if (record[0] !== EVENT.TCP_DATA || record.length <= maxData + 9) return forward(record);
    const view = new DataView(record.buffer, record.byteOffset, record.length);
    const conn = view.getUint32(1, true);
    for (let at = 9; at < record.length; at += maxData) {
      const part = record.subarray(at, Math.min(record.length, at + maxData));
      const piece = new Uint8Array(9 + part.length);
      const pv = new DataView(piece.buffer);
      piece[0] = EVENT.TCP_DATA;
      pv.setUint32(1, conn, true);
      pv.setUint32(5, part.length, true);
      piece.set(part, 9);
      forward(piece);
    }
  };
  const sendDatagram = (to: Endpoint, bytes: Uint8Array) => socket?.send(pooledCopy(bytes), to);

  const turn = () => {
    scheduled = false;
    if (stopping) return;
    try {
      while (overflow.length > 0 && eventsOut.write(overflow[0]!.length, (bytes, at) => bytes.set(overflow[0]!, at))) {
        overflow.shift();
        wrote = true;
      }
      if (overflow.length > 0) {
        // The main thread is behind: pump no more until it has read some.
        eventsOut.notify();
        void eventsOut.roomAsync(overflow[0]!.length, 100).then(schedule);
        return;
      }
      commandsIn.drain((bytes, at, len) => {
        const kind = bytes[at];
        if (kind === RECORD.STOP) return void (stopAsked = true);
        if (kind === RECORD.COMMANDS_END && pendingCommands.length === 0) {
          // A batch in one record (nearly all): from the ring into the engine's command area.
          const offset = engine.commands.reserve(len - 1);
          engine.commands.bytes.set(bytes.subarray(at + 1, at + len), offset);
          return;
        }
        pendingCommands.push(bytes.slice(at + 1, at + len));
        if (kind === RECORD.COMMANDS_END) {
          for (const chunk of pendingCommands) {
            const offset = engine.commands.reserve(chunk.length);
            engine.commands.bytes.set(chunk, offset);
          }
          pendingCommands.length = 0;
        }
      });
      const now = clock.now();
      const next = engine.pump(now, inbound.splice(0));
      engine.takeEventRecords(sendDatagram, forwardEvent);
      if (wrote) eventsOut.notify();
      wrote = false;
      if (stopAsked) return stop();
      if (timer !== undefined) clock.clearTimer(timer);
      timer = undefined;
      if (next <= now) schedule();
      else
        timer = clock.setTimer(next - now, () => {
          timer = undefined;
          schedule();
        });
    } catch (error) {
      fail(error);
    }
  };
  const schedule = () => {
    if (scheduled || stopping) return;
    scheduled = true;
    clock.defer(turn);
  };

  try {
    engine.start({
      nowMs: clock.now(),
      privateKey: config.privateKey,
      mtu: config.mtu,
      tcpReceiveBuffer: config.tcpReceiveBuffer,
      tcpSendBuffer: config.tcpSendBuffer,
      acceptTcp: config.acceptTcp,
      limits: config.limits,
    });
    const publicKey = engine.publicKey(config.privateKey);
    const peerIds: number[] = [];
    for (const [index, peer] of config.peers.entries()) {
      try {
        peerIds.push(engine.addPeer(peer.publicKey, peer.presharedKey, peer.persistentKeepalive, peer.endpoint));
      } catch (error) {
        post({ kind: "peer-refused", index, message: (error as Error).message });
        return context.close();
      }
      for (const cidr of peer.allowedIps) engine.allow(peerIds[index]!, cidr, cidr.prefix);
    }
    if (config.tap) engine.setTap(true);
    socket = await runtime.bindUdp(
      config.host,
      config.port,
      (data, from) => {
        if (inbound.length >= inboundLimit) return void queueFull++;
        inbound.push({ data, from });
        schedule();
      },
      (error, fatal) => (fatal ? fail(error) : post({ kind: "socket-error", message: error.message })),
    );
    post({ kind: "ready", address: socket.address, publicKey, peerIds });
  } catch (error) {
    const e = error as { name?: string; message?: string; code?: string; host?: string; port?: number };
    post({ kind: "start-failed", name: e.name ?? "Error", message: e.message ?? String(error), code: e.code });
    return context.close();
  }

  void controlBlock.serve((op, args) => {
    const result = call(engine, clock.now(), op, args, queueFull);
    schedule(); // what the call queued (a SYN, a datagram, RSTs) goes out now
    return result;
  }, () => stopping);
  void (async () => {
    while (!stopping) {
      await commandsIn.dataAsync(200);
      if (!commandsIn.empty) schedule();
      await new Promise<void>((resolve) => clock.defer(resolve));
    }
  })();
  schedule();
}

/** Runs one control call on the engine. */
function call(engine: Engine, now: number, op: string, args: unknown[], queueFull: number): { value: unknown } {
  const bytes = (value: unknown) => (value === null || value === undefined ? undefined : Uint8Array.from(value as number[]));
  switch (op) {
    case "addPeer": {
      // Its allowedIps follow as "allow" calls, as on one thread.
      const [key, psk, keepalive, endpoint] = args as [number[], number[] | null, number, Endpoint | null];
      return { value: engine.addPeer(bytes(key)!, bytes(psk), keepalive, endpoint ?? undefined) };
    }
    case "allow": {
      const cidr = args[1] as { family: 4 | 6; bytes: number[] };
      return { value: engine.allow(args[0] as number, { family: cidr.family, bytes: Uint8Array.from(cidr.bytes) }, args[2] as number) };
    }
    case "removePeer":
      return { value: engine.removePeer(bytes(args[0])!) };
    case "tcpConnect":
      return { value: engine.tcpConnect(now, args[0] as Endpoint, args[1] as Endpoint) };
    case "stats": {
      const stats = engine.stats();
      return { value: { ...stats, dropped: { ...stats.dropped, queueFull } } };
    }
    case "tcpStats":
      return { value: engine.tcpStats(args[0] as number) };
    case "memoryBytes":
      return { value: engine.memoryBytes };
    case "scratch":
      return { value: engine.exports.wgn_scratch(args[0] as number) };
    default:
      throw new Error(`unknown control call ${op}`);
  }
}
