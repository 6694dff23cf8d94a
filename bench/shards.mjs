// Peers sharded over engines (issue 17, target 3: "four peers downloading at once: aggregate
// ≥ 1.6× the single-threaded engine"): a prototype measured on this machine. Four client
// peers, each its own engine and UDP socket, each with one TCP connection through the tunnel,
// move bulk data with one server at once over real UDP on 127.0.0.1; only the placement of the
// server's work changes (--modes):
//
//   one        one engine with the four peers and one socket, on the main thread (today's
//              single-threaded server, `threads: 0`)
//   thread     the same engine and its socket in one worker (`threads: 1`, design a)
//   router     two engines in two workers, the peers split 2 + 2, no socket in the workers:
//              the main thread owns the one socket, hands each datagram it receives to its
//              shard's ring by the sender's endpoint, and sends what the shards' rings bring
//              back (every datagram crosses a thread, as design b did)
//   ports      two engines in two workers, each with its own socket on its own port, and its
//              peers configured to that port: the upper bound of what reusePort would give
//              (no crossing per datagram, the split chosen by us)
//   reuseport  two workers bound to ONE port with reusePort, each engine configured with all
//              four peers; the kernel spreads the peers by their address, and a peer is
//              served by the shard its handshake reached (Bun only: Node 20 and Deno have no
//              reusePort for UDP, bench/reuseport.mjs)
//
// The application (the writer of a download, the reader of an upload) runs on the main thread
// in every placement, as a user's handlers would; with workers its payload crosses the rings.
// The router routes by the sender's endpoint (a Map lookup per datagram): a real one would
// route data messages by their receiver index ((index >> 8) % shards, a shift and a load from
// the datagram's first bytes), which costs the same against the microseconds each datagram
// costs to encrypt, send, receive and decrypt.
//
// The clients are load generators in a child process of their own (--client-procs N spreads
// the four over N processes, one thread each), as four real peers would be other processes:
// the CPU this process uses is then the server's alone, and the clients' is measured apart.
// They are the same in every placement. Rounds are interleaved (one, thread, router, ports,
// one, ...), each with fresh engines, sockets and workers on both sides: a warm-up, then the
// measured seconds. Reports the aggregate payload rate (counted where it is received: by the
// clients for a download, by the server's application for an upload), the CPU of the server
// process (per thread too, from /proc/self/task: Linux only) and of the clients, the wall time
// each server engine's thread spent in its turns (preemption included), and per round the
// ratio to the first mode.
//
//   node bench/shards.mjs [--seconds S] [--rounds N] [--modes one,thread,router,ports]
//                         [--direction down|up] [--client-procs N]     (after `node build.mjs`)
//   bun bench/shards.mjs --modes one,thread,router,ports,reuseport

import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { applyMainRecords, option, bindSocket, RecordWriter, CHUNK, EngineLoop, HOST, load, median, parseIp, privateKey, publicKeyOf, RECORD as K, Ring, runtimeName, SEND_CHUNK, startEngine } from "./support/engines.mjs";

/** Record kinds on the rings (the first byte). */
const RING_BYTES = 4 << 20;
const PEERS = 4;
/** The server's TCP ports: it writes to a connection on DOWN_PORT and reads one on UP_PORT. */
const DOWN_PORT = 19;
const UP_PORT = 9;
const SERVER_INNER = "10.0.0.1";
const innerAddress = (i) => `10.0.0.${2 + i}`;
const WARM_UP_MS = 1000;

const ignore = () => {};
/** An engine's events, the ones these benchmarks use wired to `on`, the rest ignored. */
function events(engine, on) {
  return {
    datagram: on.datagram,
    tcpIncoming: (conn) => engine.commands.accept(conn),
    tcpEstablished: ignore,
    tcpData: (conn, bytes) => on.data?.(conn, bytes),
    tcpWritable: (conn, room) => on.writable?.(conn, room),
    tcpClosed: (conn, reason) => {
      if (!on.stopping?.()) throw new Error(`connection ${conn} closed (${reason})`);
    },
    tcpEof: ignore, udp: ignore, unknownPeer: ignore, innerPacket: ignore, echoReply: ignore, udpUnreachable: ignore,
  };
}

/** Writes what each connection may take, in SEND_CHUNK pieces, with `send(conn, bytes)`; false if `send` refused one. */
function writeRoom(rooms, send) {
  for (const [conn, room] of rooms) {
    let left = room;
    while (left > 0) {
      const n = Math.min(left, SEND_CHUNK);
      if (!send(conn, CHUNK.subarray(0, n))) {
        rooms.set(conn, left);
        return false;
      }
      left -= n;
    }
    rooms.set(conn, 0);
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// A client process: the load generators. Commands come as JSON lines on stdin, answers go
// out on stdout. "open" makes the engines and binds their sockets (and answers their ports:
// the router needs them before the first datagram), "go" connects, "count" answers the payload
// received so far with this process's clock and CPU, "close" drops everything.

async function clientProcess() {
  const answer = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
  let clients = [];
  const received = { bytes: 0 };
  for await (const line of createInterface({ input: process.stdin })) {
    const m = JSON.parse(line);
    if (m.cmd === "open") {
      clients = await Promise.all(m.peers.map((p) => openClient(p, m.direction, received)));
      answer({ ports: clients.map((c) => c.socket.address().port) });
    } else if (m.cmd === "go") {
      for (const c of clients) c.go();
      answer({ ok: true });
    } else if (m.cmd === "count") {
      answer({ bytes: received.bytes, t: performance.now(), cpu: process.cpuUsage() });
    } else if (m.cmd === "close") {
      for (const c of clients) c.close();
      clients = [];
      answer({ ok: true });
    } else if (m.cmd === "exit") break;
  }
  process.exit(0);
}

/** One client peer: its engine and socket on this thread's loop, its one connection driven by itself. */
async function openClient(p, direction, received) {
  const engine = startEngine(Uint8Array.from(p.key), false);
  const peer = engine.addPeer(Uint8Array.from(p.serverPublicKey), undefined, 0, { host: HOST, port: p.serverPort });
  engine.allow(peer, parseIp("0.0.0.0"), 0);
  let conn = -1;
  let unconsumed = 0;
  let stopping = false;
  const rooms = new Map();
  let socket;
  const loop = new EngineLoop(
    engine,
    events(engine, {
      datagram: (to, bytes) => socket.send(bytes, to.port, to.host),
      data: (_conn, bytes) => {
        received.bytes += bytes.length;
        unconsumed += bytes.length;
        loop.schedule();
      },
      writable: (c, room) => {
        if (direction === "down") return; // only the uploader writes
        rooms.set(c, (rooms.get(c) ?? 0) + room);
        loop.schedule();
      },
      stopping: () => stopping,
    }),
    () => {
      // The reader takes all that arrived at once; the writer writes all it may.
      if (unconsumed > 0) engine.commands.consumed(conn, unconsumed);
      unconsumed = 0;
      writeRoom(rooms, (c, bytes) => (engine.commands.send(c, bytes), true));
    },
  );
  socket = await bindSocket((data, rinfo) => loop.receive(data, rinfo));
  return {
    socket,
    go: () => {
      const port = direction === "down" ? DOWN_PORT : UP_PORT;
      conn = engine.tcpConnect(performance.now(), { host: p.address, port: 0 }, { host: SERVER_INNER, port }).id;
      loop.schedule();
    },
    close: () => {
      stopping = true;
      loop.stop();
      socket.close();
    },
  };
}

/** The client processes, as the main thread talks to them. */
async function startClientProcesses(n) {
  const procs = [];
  for (let i = 0; i < n; i++) {
    const child = spawn(process.execPath, [new URL(import.meta.url).pathname, "--client-process"], { stdio: ["pipe", "pipe", "inherit"] });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    procs.push({
      child,
      ask: async (m) => {
        child.stdin.write(`${JSON.stringify(m)}\n`);
        const { value, done } = await lines.next();
        if (done) throw new Error("a client process ended");
        return JSON.parse(value);
      },
    });
  }
  return procs;
}

// ---------------------------------------------------------------------------------------
// A shard: one engine in a worker, with the peers it was given, and either its own socket
// (thread, ports, reuseport) or none (router: datagrams come and go through the rings, with
// the peer's port). What it tells the main thread: WRITABLE, DATA, and with no socket DGRAM;
// what it takes: SEND, CONSUMED, DGRAM, STOP.

function shardWorker() {
  const { key, peers, ownSocket, port, reusePort, toWorker, toMain, busy } = workerData;
  const inRing = new Ring(toWorker);
  const out = new RecordWriter(new Ring(toMain));
  // [ms in turns, turns, datagrams sent]
  const counts = new Float64Array(busy);
  let stopping = false;
  const engine = startEngine(Uint8Array.from(key), true);
  for (const p of peers) engine.allow(engine.addPeer(Uint8Array.from(p.publicKey), undefined, 0, undefined), parseIp(p.address), 32);
  let socket;
  const inbound = [];
  const handler = events(engine, {
    datagram: (to, bytes) => {
      counts[2]++;
      if (socket) socket.send(bytes, to.port, to.host);
      else
        out.put(3 + bytes.length, (b, at) => {
          b[at] = K.DGRAM;
          new DataView(b.buffer, b.byteOffset + at + 1, 2).setUint16(0, to.port, true);
          b.set(bytes, at + 3);
        });
    },
    writable: (conn, room) => out.putNumbers(K.WRITABLE, conn, room),
    data: (conn, bytes) =>
      out.put(5 + bytes.length, (b, at) => {
        b[at] = K.DATA;
        new DataView(b.buffer, b.byteOffset + at + 1, 4).setUint32(0, conn, true);
        b.set(bytes, at + 5);
      }),
    stopping: () => stopping,
  });
  /** The main thread's records: commands for the engine, and (router) datagrams. */
  const takeRecords = () =>
    applyMainRecords(inRing, engine, {
      datagram: (b, at, len) => inbound.push({ data: b.slice(at + 3, at + len), from: { host: HOST, port: b[at + 1] | (b[at + 2] << 8) } }),
      stop: () => (stopping = true),
    });
  const flush = () => {
    out.flush();
  };
  const finish = () => {
    socket?.close();
    parentPort.postMessage({ stopped: true });
    parentPort.close();
  };

  if (!ownSocket) {
    parentPort.postMessage({ ready: true });
    // No socket, so no event loop to serve: block between turns.
    while (!stopping) {
      const t = performance.now();
      takeRecords();
      const next = engine.pump(performance.now(), inbound.splice(0));
      engine.takeEvents(handler);
      flush();
      counts[0] += performance.now() - t;
      counts[1]++;
      const wait = next - performance.now();
      if (wait > 0 && inRing.empty) inRing.waitForData(Math.min(wait, 100));
    }
    return finish();
  }
  const loop = new EngineLoop(engine, handler, takeRecords);
  const afterTurn = loop.turn.bind(loop);
  loop.turn = () => {
    if (stopping) return;
    afterTurn();
    flush();
    if (stopping) {
      loop.stop();
      finish();
    }
  };
  loop.counts = counts;
  bindSocket((data, rinfo) => loop.receive(data, rinfo), { port, reusePort }).then((s) => {
    socket = s;
    parentPort.postMessage({ ready: true, port: socket.address().port });
    (async () => {
      while (!stopping) {
        await inRing.dataAsync(100);
        // A turn now, not scheduled: while records wait, dataAsync resolves at once, and
        // awaiting it in a loop would starve the immediates.
        if (!inRing.empty) loop.turn();
      }
    })();
  });
}

// ---------------------------------------------------------------------------------------
// The main thread: the server's placements and the application on its side.

/**
 * The application on the server's side of every connection: a download's writer (writes all
 * the connection may take) or an upload's reader (counts, and consumes at once). `sink` is
 * where the engine is: `send(conn, bytes)` and `consumed(conn, n)`, each false when it must wait.
 */
class Application {
  rooms = new Map();
  unconsumed = new Map();
  bytes = 0;
  /** The connections seen (with reuseport: how the kernel split the peers). */
  conns = new Set();

  constructor(direction) {
    this.direction = direction;
  }

  writable(conn, room) {
    this.conns.add(conn);
    if (this.direction === "up") return; // only the downloads' writer writes
    this.rooms.set(conn, (this.rooms.get(conn) ?? 0) + room);
  }

  data(conn, n) {
    this.conns.add(conn);
    this.bytes += n;
    this.unconsumed.set(conn, (this.unconsumed.get(conn) ?? 0) + n);
  }

  /** Hands the engine what waits; false when `sink` refused something (a full ring). */
  flush(sink) {
    for (const [conn, n] of this.unconsumed) {
      if (n > 0 && !sink.consumed(conn, n)) return false;
      this.unconsumed.set(conn, 0);
    }
    return writeRoom(this.rooms, sink.send);
  }
}

/** `one`: the engine, its socket and the application on the main thread. */
async function serveOnMain(key, peers, direction) {
  const engine = startEngine(key, true);
  for (const p of peers) engine.allow(engine.addPeer(p.publicKey, undefined, 0, undefined), parseIp(p.address), 32);
  const app = new Application(direction);
  let stopping = false;
  let socket;
  const sink = { send: (conn, bytes) => (engine.commands.send(conn, bytes), true), consumed: (conn, n) => (engine.commands.consumed(conn, n), true) };
  const loop = new EngineLoop(
    engine,
    events(engine, {
      datagram: (to, bytes) => socket.send(bytes, to.port, to.host),
      writable: (conn, room) => (app.writable(conn, room), loop.schedule()),
      data: (conn, bytes) => (app.data(conn, bytes.length), loop.schedule()),
      stopping: () => stopping,
    }),
    () => app.flush(sink),
  );
  socket = await bindSocket((data, rinfo) => loop.receive(data, rinfo));
  const port = socket.address().port;
  return {
    app,
    portOf: () => port,
    busy: () => [loop.counts[0]],
    turns: () => loop.counts[1],
    stop: async () => {
      stopping = true;
      loop.stop();
      socket.close();
    },
  };
}

async function spawnShard(data) {
  const toWorker = Ring.create(RING_BYTES);
  const toMain = Ring.create(RING_BYTES);
  const busy = new SharedArrayBuffer(24);
  const worker = new Worker(new URL(import.meta.url), { workerData: { ...data, toWorker: toWorker.buffer, toMain: toMain.buffer, busy } });
  const ready = await new Promise((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
  });
  worker.on("error", (error) => {
    console.error("a shard failed:", error);
    process.exit(1);
  });
  return { worker, toWorker, toMain, counts: new Float64Array(busy), port: ready.port, notifyPending: false };
}

/**
 * thread, router, ports, reuseport: the engines in workers (`shards` of them, `peersOf(i)` the
 * peers of shard i), the application on the main thread. With `router` the main thread owns
 * the socket and `routeTo(port)` names the shard of the peer at that port.
 */
async function serveOnWorkers(key, shardCount, peersOf, direction, { router = false, reusePort = false }) {
  const app = new Application(direction);
  const stats = { dropped: 0 };
  let running = true;
  const shards = [];
  for (let i = 0; i < shardCount; i++) {
    const port = reusePort && i > 0 ? shards[0].port : 0;
    shards.push(await spawnShard({ key: [...key], peers: peersOf(i).map((p) => ({ ...p, publicKey: [...p.publicKey] })), ownSocket: !router, port, reusePort }));
  }
  const notifySoon = (s) => {
    if (s.notifyPending) return;
    s.notifyPending = true;
    setImmediate(() => {
      s.notifyPending = false;
      s.toWorker.notify();
    });
  };
  // The application's connections are (shard, conn): one Application per shard keeps them apart.
  const apps = shards.map(() => new Application(direction));
  const routes = new Map();
  let socket;
  if (router) {
    socket = await bindSocket((data, rinfo) => {
      const s = routes.get(rinfo.port);
      if (s === undefined) return;
      const ok = s.toWorker.write(3 + data.length, (b, at) => {
        b[at] = K.DGRAM;
        new DataView(b.buffer, b.byteOffset + at + 1, 2).setUint16(0, rinfo.port, true);
        b.set(data, at + 3);
      });
      if (!ok) stats.dropped++; // a full ring drops, as a full socket buffer would
      notifySoon(s);
    });
  }
  const sinkOf = (s) => ({
    send: (conn, bytes) =>
      s.toWorker.write(5 + bytes.length, (b, at) => {
        b[at] = K.SEND;
        new DataView(b.buffer, b.byteOffset + at + 1, 4).setUint32(0, conn, true);
        b.set(bytes, at + 5);
      }),
    consumed: (conn, n) =>
      s.toWorker.write(9, (b, at) => {
        const v = new DataView(b.buffer, b.byteOffset + at, 9);
        b[at] = K.CONSUMED;
        v.setUint32(1, conn, true);
        v.setUint32(5, n, true);
      }),
  });
  const serve = async (s, shardApp) => {
    const sink = sinkOf(s);
    let waitingForRoom = false;
    const flush = () => {
      if (waitingForRoom) return;
      if (!shardApp.flush(sink)) {
        // The ring is full: go on once the worker took some (nothing dropped).
        waitingForRoom = true;
        s.toWorker.roomAsync(5 + SEND_CHUNK, 100).then(() => {
          waitingForRoom = false;
          if (running) flush();
        });
      }
      s.toWorker.notify();
    };
    while (running) {
      await s.toMain.dataAsync(100);
      s.toMain.drain((b, at, len) => {
        const v = new DataView(b.buffer, b.byteOffset + at, len);
        switch (b[at]) {
          case K.DGRAM:
            socket.send(b.slice(at + 3, at + len), v.getUint16(1, true), HOST);
            break;
          case K.WRITABLE:
            shardApp.writable(v.getUint32(1, true), v.getUint32(5, true));
            break;
          case K.DATA:
            shardApp.data(v.getUint32(1, true), len - 5);
            app.bytes += len - 5;
            break;
        }
      });
      flush();
    }
  };
  const loops = shards.map((s, i) => serve(s, apps[i]));
  return {
    app,
    stats,
    portOf: (i) => (router ? socket.address().port : shards[i].port),
    setRoutes: (portToShard) => {
      for (const [port, i] of portToShard) routes.set(port, shards[i]);
    },
    busy: () => shards.map((s) => s.counts[0]),
    turns: () => shards.reduce((sum, s) => sum + s.counts[1], 0),
    split: () => apps.map((a) => a.conns.size).join("+"),
    stop: async () => {
      running = false;
      await Promise.all(loops);
      await Promise.all(
        shards.map((s) => {
          s.toWorker.write(1, (b, at) => (b[at] = K.STOP));
          s.toWorker.notify();
          return new Promise((resolve) => {
            s.worker.once("exit", resolve);
            setTimeout(() => s.worker.terminate(), 2000);
          });
        }),
      );
      socket?.close();
    },
  };
}

/** CPU seconds of each of this process's threads, by thread id (Linux: /proc/self/task; user + system, in clock ticks of 10 ms). */
function threadCpu() {
  const ticks = new Map();
  for (const tid of readdirSync("/proc/self/task")) {
    try {
      const fields = readFileSync(`/proc/self/task/${tid}/stat`, "utf8").split(") ")[1].split(" ");
      ticks.set(tid, (Number(fields[11]) + Number(fields[12])) / 100);
    } catch {
      // the thread ended
    }
  }
  return ticks;
}

/** Cores each thread used between two `threadCpu()`: the main thread, then the others, busiest first. */
function threadCores(before, after, wallMs) {
  const main = String(process.pid);
  const cores = (tid) => (after.get(tid) - (before.get(tid) ?? 0)) / (wallMs / 1000);
  const others = [...after.keys()].filter((tid) => tid !== main).map(cores).sort((a, b) => b - a);
  return { main: cores(main), others };
}

/** One round of one placement: fresh keys, engines, sockets and workers; a warm-up, then `seconds` measured. */
async function round(mode, seconds, direction, clientProcs) {
  const serverKey = privateKey();
  const serverPublicKey = publicKeyOf(serverKey);
  const clientKeys = Array.from({ length: PEERS }, privateKey);
  const peers = clientKeys.map((k, i) => ({ publicKey: publicKeyOf(k), address: innerAddress(i) }));
  // Two shards: peers 0, 1 on shard 0, peers 2, 3 on shard 1 (reuseport: all on both).
  const shardOf = (i) => (i < PEERS / 2 ? 0 : 1);
  let server;
  if (mode === "one") server = await serveOnMain(serverKey, peers, direction);
  else if (mode === "thread") server = await serveOnWorkers(serverKey, 1, () => peers, direction, {});
  else if (mode === "router") server = await serveOnWorkers(serverKey, 2, (s) => peers.filter((_, i) => shardOf(i) === s), direction, { router: true });
  else if (mode === "ports") server = await serveOnWorkers(serverKey, 2, (s) => peers.filter((_, i) => shardOf(i) === s), direction, {});
  else if (mode === "reuseport") server = await serveOnWorkers(serverKey, 2, () => peers, direction, { reusePort: true });
  else throw new Error(`unknown mode ${mode}`);
  const serverPortOf = (i) => server.portOf(mode === "ports" ? shardOf(i) : 0);

  // The peers, spread over the client processes in turn.
  const perProc = clientProcs.map(() => []);
  for (let i = 0; i < PEERS; i++) perProc[i % clientProcs.length].push(i);
  const opened = await Promise.all(
    clientProcs.map((c, j) =>
      c.ask({ cmd: "open", direction, peers: perProc[j].map((i) => ({ key: [...clientKeys[i]], serverPublicKey: [...serverPublicKey], serverPort: serverPortOf(i), address: innerAddress(i) })) }),
    ),
  );
  const portToShard = new Map();
  for (const [j, o] of opened.entries()) for (const [n, port] of o.ports.entries()) portToShard.set(port, shardOf(perProc[j][n]));
  server.setRoutes?.(portToShard);
  await Promise.all(clientProcs.map((c) => c.ask({ cmd: "go" })));

  await new Promise((r) => setTimeout(r, WARM_UP_MS));
  const before = await Promise.all(clientProcs.map((c) => c.ask({ cmd: "count" })));
  const serverBytes0 = server.app.bytes;
  const cpu0 = process.cpuUsage();
  const threads0 = threadCpu();
  const busy0 = server.busy();
  const turns0 = server.turns();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const after = await Promise.all(clientProcs.map((c) => c.ask({ cmd: "count" })));
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const threads = threadCores(threads0, threadCpu(), wall);
  const busy = server.busy().map((x, i) => (x - busy0[i]) / wall);
  const turns = server.turns() - turns0;
  const serverBytes = server.app.bytes - serverBytes0;

  await Promise.all(clientProcs.map((c) => c.ask({ cmd: "close" })));
  await server.stop();

  const cores = (u) => (u.user + u.system) / 1000;
  let gbps = 0;
  let clientCores = 0;
  before.forEach((b, j) => {
    const a = after[j];
    gbps += ((a.bytes - b.bytes) * 8) / ((a.t - b.t) / 1000) / 1e9;
    clientCores += (cores(a.cpu) - cores(b.cpu)) / (a.t - b.t);
  });
  if (direction === "up") gbps = (serverBytes * 8) / (wall / 1000) / 1e9;
  const mib = (gbps * 1e9 * (wall / 1000)) / 8 / 2 ** 20;
  return { turnsPerMiB: turns / mib, gbps, serverCores: cores(cpu) / wall, threads, clientCores, busy, split: server.split?.(), dropped: server.stats?.dropped ?? 0 };
}

async function main() {
  const SECONDS = Number(option("--seconds", 3));
  const ROUNDS = Number(option("--rounds", 3));
  const MODES = option("--modes", "one,thread,router,ports").split(",");
  const DIRECTION = option("--direction", "down");
  const CLIENT_PROCS = Number(option("--client-procs", 1));
  const clientProcs = await startClientProcesses(CLIENT_PROCS);
  console.log(`${runtimeName()}, ${PEERS} peers ${DIRECTION === "down" ? "downloading" : "uploading"}, clients in ${CLIENT_PROCS} process(es), ${SECONDS} s per round; load before ${load()}`);
  const all = Object.fromEntries(MODES.map((m) => [m, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of MODES) {
      const x = await round(mode, SECONDS, DIRECTION, clientProcs);
      all[mode].push(x);
      console.log(
        `round ${r} ${mode.padEnd(9)} ${x.gbps.toFixed(3)} Gbit/s  server ${x.serverCores.toFixed(2)} cores (main ${x.threads.main.toFixed(2)}, others ${x.threads.others.slice(0, 3).map((c) => c.toFixed(2)).join(" ")})  clients ${x.clientCores.toFixed(2)} cores  engine turns busy ${x.busy.map((b) => b.toFixed(2)).join("/")}, ${x.turnsPerMiB.toFixed(1)} per MiB${x.split ? ` (peers ${x.split})` : ""}${x.dropped ? `  dropped ${x.dropped}` : ""}  load ${load()}`,
      );
    }
  }
  const range = (xs, digits) => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;
  for (const mode of MODES) {
    const g = all[mode].map((x) => x.gbps);
    const ratio = all[mode].map((x, i) => x.gbps / all[MODES[0]][i].gbps);
    const sc = all[mode].map((x) => x.serverCores);
    const cc = all[mode].map((x) => x.clientCores);
    const perCore = all[mode].map((x) => x.gbps / x.serverCores);
    // A projection, not a measure: the rate if the server's busiest thread had a core to itself
    // and nothing else (the clients included) held it back.
    const busiest = all[mode].map((x) => x.gbps / Math.max(x.threads.main, ...x.threads.others));
    const clientsPerCore = all[mode].map((x) => x.gbps / x.clientCores);
    console.log(
      `${mode.padEnd(9)} median ${median(g).toFixed(3)} Gbit/s (${range(g, 3)}); ×${MODES[0]} per round ${median(ratio).toFixed(2)} (${range(ratio, 2)}); server ${median(sc).toFixed(2)} cores, ${median(perCore).toFixed(3)} Gbit/s per server core, ${median(busiest).toFixed(3)} per core of its busiest thread; clients ${median(cc).toFixed(2)} cores, ${median(clientsPerCore).toFixed(3)} Gbit/s per client core`,
    );
  }
  console.log(`load after ${load()}`);
  await Promise.all(clientProcs.map((c) => c.child.stdin.end(`${JSON.stringify({ cmd: "exit" })}\n`)));
}

if (!isMainThread) shardWorker();
else if (process.argv.includes("--client-process")) await clientProcess();
else await main();
