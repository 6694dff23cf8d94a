// Where to cut the server between two threads (issue 17): a prototype measured on the
// in-process bulk path. Two engines (ts/wasm/engine.ts), a client and a server, move TCP
// payload one way (client → server's discard) over real UDP on 127.0.0.1, in one process,
// as echo.mjs's bulk does; only the placement of the work changes:
//
//   main  everything on the main thread: both engines and both sockets (today's shape).
//   a     each engine AND its UDP socket in its own worker; only TCP payload and TCP
//         events cross to the main thread (SEND chunks in, DATA/WRITABLE out).
//   b     both sockets on the main thread, each engine in its own worker; every datagram
//         crosses (socket → ring → engine, engine → ring → socket), and TCP payload too.
//
// Threads talk through ts/host/worker/ring.ts (SharedArrayBuffer + Atomics, a notify per
// batch, never a postMessage per packet). Rounds are interleaved (main, a, b, main, a, b, ...)
// so that the shared machine's load falls on all of them alike; the load average is printed
// with the figures. Each round is a fresh pair of engines: a warm-up, then SECONDS measured.
//
//   node bench/threads-seam.mjs [--seconds S] [--rounds N] [--modes main,a,b]   (after `node build.mjs`)

import os from "node:os";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { applyMainRecords, load, option, runtimeName, bindSocket, RecordWriter, CHUNK, Engine, HOST, parseIp, privateKey, RECORD as K, Ring, SEND_CHUNK, startEngine } from "./support/engines.mjs";

const RING_BYTES = 2 << 20;
/** What a worker that has no socket (mode b) tells its engine about the other side. */
const PEER_EP = Object.freeze({ host: "192.0.2.9", port: 9 });
/** A deadline this close is waited for by going round the event loop, not by a timer (whose floor is 1 ms). */
const SPIN_MS = Number(process.env.SPIN_MS ?? 0);

/** One engine set up as the server (accepts, peer 10.0.0.2) or the client (peer 0.0.0.0/0 at `endpoint`). */
function makeEngine(role, key, peerPublicKey, endpoint) {
  const engine = startEngine(key, role === "server");
  const peer = engine.addPeer(peerPublicKey, undefined, 0, role === "client" ? endpoint : undefined);
  engine.allow(peer, parseIp(role === "server" ? "10.0.0.2" : "0.0.0.0"), role === "server" ? 32 : 0);
  return engine;
}

const ignore = () => {};
/** The events each role's engine gives, wired to callbacks (`out`) that place them. */
function handlerFor(role, engine, out) {
  return {
    datagram: (to, bytes) => out.datagram(to, bytes),
    tcpIncoming: (conn) => engine.commands.accept(conn),
    tcpEstablished: (conn) => out.conn(conn),
    tcpData: (conn, bytes) => out.data(conn, bytes),
    tcpWritable: (conn, room) => out.writable(conn, room),
    tcpClosed: (conn, reason) => {
      throw new Error(`${role}: connection ${conn} closed (${reason})`);
    },
    tcpEof: ignore, udp: ignore, unknownPeer: ignore, innerPacket: ignore, echoReply: ignore, udpUnreachable: ignore,
  };
}

// ---------------------------------------------------------------------------------------
// The worker: one engine; in mode a also its socket.

if (!isMainThread) {
  const { role, mode, key, peerPublicKey, peerPort, toWorker, toMain, busy, selfDrive } = workerData;
  let commandsPending = false;
  const inRing = new Ring(toWorker);
  const out = new RecordWriter(new Ring(toMain));
  const busyMs = new Float64Array(busy);
  let stopping = false;
  let socket;
  const inbound = [];
  const engine = makeEngine(role, key, peerPublicKey, mode === "a" && role === "client" ? { host: HOST, port: peerPort } : PEER_EP);
  const handler = handlerFor(role, engine, {
    datagram: (to, bytes) => {
      busyMs[1]++;
      if (socket) socket.send(bytes, to.port, to.host);
      else out.put(1 + bytes.length, (b, at) => ((b[at] = K.DGRAM), b.set(bytes, at + 1)));
    },
    conn: (conn) => out.putNumbers(K.CONN, conn),
    data: (conn, bytes) =>
      out.put(5 + bytes.length, (b, at) => {
        b[at] = K.DATA;
        new DataView(b.buffer, b.byteOffset + at + 1, 4).setUint32(0, conn, true);
        b.set(bytes, at + 5);
      }),
    writable: (conn, room) => {
      if (!selfDrive) return out.putNumbers(K.WRITABLE, conn, room);
      // A load generator: the client writes what it may itself, with no main thread in the loop.
      for (let left = room; left > 0; left -= Math.min(left, SEND_CHUNK)) engine.commands.send(conn, CHUNK.subarray(0, Math.min(left, SEND_CHUNK)));
      commandsPending = true;
    },
  });
  if (role === "client") engine.tcpConnect(performance.now(), { host: "10.0.0.2", port: 0 }, { host: "10.0.0.1", port: 9 });

  /** Commands (and in mode b datagrams) from main, then one pump; returns the engine's deadline. */
  const turn = () => {
    const t = performance.now();
    applyMainRecords(inRing, engine, {
      datagram: (b, at, len) => inbound.push({ data: b.slice(at + 1, at + len), from: PEER_EP }),
      stop: () => (stopping = true),
    });
    busyMs[2]++;
    const next = engine.pump(performance.now(), inbound.splice(0));
    engine.takeEvents(handler);
    out.flush();
    busyMs[0] += performance.now() - t;
    return next;
  };

  const finish = () => {
    socket?.close();
    parentPort.postMessage({ stopped: true });
    parentPort.close();
  };

  if (mode === "b") {
    parentPort.postMessage({ ready: true });
    // No socket, no event loop needed: block between turns.
    while (!stopping) {
      const next = turn();
      const wait = next - performance.now();
      if (wait > 0) inRing.waitForData(Math.min(wait, 100));
    }
    finish();
  } else {
    let scheduled = false;
    let timer;
    const pump = () => {
      scheduled = false;
      if (stopping) return;
      const next = turn();
      if (stopping) return finish();
      clearTimeout(timer);
      const wait = next - performance.now();
      if (wait <= SPIN_MS || commandsPending) schedule();
      else timer = setTimeout(pump, wait);
      commandsPending = false;
    };
    const schedule = () => {
      if (scheduled) return;
      scheduled = true;
      setImmediate(pump);
    };
    socket = await bindSocket((data, rinfo) => {
      inbound.push({ data, from: { host: rinfo.address, port: rinfo.port } });
      schedule();
    });
    parentPort.postMessage({ ready: true, port: socket.address().port });
    schedule();
    (async () => {
      while (!stopping) {
        await inRing.dataAsync(100);
        if (!inRing.empty) pump();
      }
    })();
  }
}

// ---------------------------------------------------------------------------------------
// The main thread: the driver (client writes as fast as it may, server reads all at once).

/** The TCP side the main thread plays in every mode: a writer on the client, a reader on the server. */
function driver(stats) {
  return {
    client: { conn: -1, room: 0 },
    server: { conn: -1, unconsumed: 0 },
    stats,
  };
}

async function roundMain(seconds) {
  const stats = { bytes: 0 };
  const d = driver(stats);
  const serverKey = privateKey();
  const clientKey = privateKey();
  const keyOf = (k) => new Engine().publicKey(k);
  let sockets = {};
  let ports = {};
  const sides = {};
  const side = (role, engine) => {
    const s = { engine, inbound: [], scheduled: false, timer: undefined, counts: new Float64Array(4) };
    s.handler = handlerFor(role, engine, {
      datagram: (_to, bytes) => (s.counts[1]++, sockets[role].send(bytes, ports[role === "client" ? "server" : "client"], HOST)),
      conn: (conn) => (role === "client" ? (d.client.conn = conn) : (d.server.conn = conn)),
      data: (conn, bytes) => {
        d.server.conn = conn;
        stats.bytes += bytes.length;
        d.server.unconsumed += bytes.length;
      },
      writable: (_conn, room) => role === "client" && (d.client.room += room),
    });
    s.pump = () => {
      s.scheduled = false;
      if (s.stopped) return;
      if (role === "client") for (; d.client.room > 0 && d.client.conn >= 0; d.client.room -= Math.min(d.client.room, SEND_CHUNK)) engine.commands.send(d.client.conn, CHUNK.subarray(0, Math.min(d.client.room, SEND_CHUNK)));
      if (role === "server" && d.server.unconsumed > 0) {
        engine.commands.consumed(d.server.conn, d.server.unconsumed);
        d.server.unconsumed = 0;
      }
      s.counts[2]++;
      const t = performance.now();
      const next = engine.pump(t, s.inbound.splice(0));
      engine.takeEvents(s.handler);
      s.counts[0] += performance.now() - t;
      clearTimeout(s.timer);
      const wait = next - performance.now();
      if (wait <= 0 || (role === "client" && d.client.room > 0) || (role === "server" && d.server.unconsumed > 0)) s.schedule();
      else s.timer = setTimeout(s.pump, wait);
      if (role === "server" && d.server.unconsumed > 0) sides.server.schedule();
    };
    s.schedule = () => {
      if (s.scheduled || s.stopped) return;
      s.scheduled = true;
      setImmediate(s.pump);
    };
    return s;
  };
  const serverSocket = await bindSocket((data, rinfo) => {
    sides.server.inbound.push({ data, from: { host: rinfo.address, port: rinfo.port } });
    sides.server.schedule();
  });
  const clientSocket = await bindSocket((data, rinfo) => {
    sides.client.inbound.push({ data, from: { host: rinfo.address, port: rinfo.port } });
    sides.client.schedule();
  });
  sockets = { server: serverSocket, client: clientSocket };
  ports = { server: serverSocket.address().port, client: clientSocket.address().port };
  sides.server = side("server", makeEngine("server", serverKey, keyOf(clientKey)));
  const clientEngine = makeEngine("client", clientKey, keyOf(serverKey), { host: HOST, port: serverSocket.address().port });
  sides.client = side("client", clientEngine);
  d.client.conn = clientEngine.tcpConnect(performance.now(), { host: "10.0.0.2", port: 0 }, { host: "10.0.0.1", port: 9 }).id;
  sides.client.schedule();
  const result = await measureRound(seconds, stats, () => 0, [sides.server.counts, sides.client.counts]);
  for (const s of Object.values(sides)) {
    s.stopped = true;
    clearTimeout(s.timer);
  }
  serverSocket.close();
  clientSocket.close();
  return result;
}

/** A worker running one engine (see the top of the worker's part); resolves once it is ready. */
async function spawnWorker(data) {
  const toWorker = Ring.create(RING_BYTES);
  const toMain = Ring.create(RING_BYTES);
  const busy = new SharedArrayBuffer(32);
  const worker = new Worker(new URL(import.meta.url), { workerData: { ...data, toWorker: toWorker.buffer, toMain: toMain.buffer, busy } });
  const ready = await new Promise((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
  });
  return { role: data.role, worker, toWorker, toMain, busy: new Float64Array(busy), port: ready.port, notifyPending: false };
}

async function stopWorker(w) {
  w.toWorker.write(1, (b, at) => (b[at] = K.STOP));
  w.toWorker.notify();
  await new Promise((resolve) => {
    w.worker.once("exit", resolve);
    setTimeout(() => w.worker.terminate(), 2000);
  });
}

async function roundThreads(mode, seconds) {
  const stats = { bytes: 0, dropped: 0 };
  const d = driver(stats);
  const serverKey = privateKey();
  const clientKey = privateKey();
  const keyOf = (k) => new Engine().publicKey(k);
  const spawn = (role, peerPort) => spawnWorker({ role, mode, key: role === "server" ? serverKey : clientKey, peerPublicKey: keyOf(role === "server" ? clientKey : serverKey), peerPort });
  const server = await spawn("server");
  const client = await spawn("client", server.port);
  const notifySoon = (w) => {
    if (w.notifyPending) return;
    w.notifyPending = true;
    setImmediate(() => {
      w.notifyPending = false;
      w.toWorker.notify();
    });
  };
  let sockets;
  if (mode === "b") {
    // Main owns the sockets: every datagram goes through a ring.
    const forward = (w) => (data) => {
      if (!w.toWorker.write(1 + data.length, (b, at) => ((b[at] = K.DGRAM), b.set(data, at + 1)))) stats.dropped++;
      notifySoon(w);
    };
    sockets = { server: await bindSocket(forward(server)), client: await bindSocket(forward(client)) };
  }
  let running = true;
  const writeSends = () => {
    let wrote = false;
    while (d.client.room > 0 && d.client.conn >= 0) {
      const n = Math.min(d.client.room, SEND_CHUNK);
      const ok = client.toWorker.write(5 + n, (b, at) => {
        b[at] = K.SEND;
        new DataView(b.buffer, b.byteOffset + at + 1, 4).setUint32(0, d.client.conn, true);
        b.set(CHUNK.subarray(0, n), at + 5);
      });
      if (!ok) {
        // Full: wait for the worker to take some, then go on (backpressure, nothing dropped).
        client.toWorker.roomAsync(5 + n, 100).then(() => running && writeSends());
        break;
      }
      d.client.room -= n;
      wrote = true;
    }
    if (wrote) client.toWorker.notify();
  };
  const readLoop = async (w) => {
    while (running) {
      await w.toMain.dataAsync(100);
      let consumed = 0;
      w.toMain.drain((b, at, len) => {
        const v = new DataView(b.buffer, b.byteOffset + at, len);
        switch (b[at]) {
          case K.DGRAM: {
            const other = w.role === "server" ? client : server;
            const port = mode === "b" ? sockets[other.role].address().port : 0;
            sockets[w.role].send(b.slice(at + 1, at + len), port, HOST);
            break;
          }
          case K.CONN:
            if (w.role === "client") d.client.conn = v.getUint32(1, true);
            break;
          case K.WRITABLE:
            if (w.role === "client") d.client.room += v.getUint32(5, true);
            break;
          case K.DATA:
            d.server.conn = v.getUint32(1, true);
            stats.bytes += len - 5;
            consumed += len - 5;
            break;
        }
      });
      if (w.role === "client") writeSends();
      if (consumed > 0) {
        const conn = d.server.conn;
        server.toWorker.write(9, (b, at) => {
          const dv = new DataView(b.buffer, b.byteOffset + at, 9);
          b[at] = K.CONSUMED;
          dv.setUint32(1, conn, true);
          dv.setUint32(5, consumed, true);
        });
        server.toWorker.notify();
      }
    }
  };
  const loops = [readLoop(server), readLoop(client)];
  const result = await measureRound(seconds, stats, () => server.busy[0] + client.busy[0], [server.busy, client.busy]);
  running = false;
  await Promise.all(loops);
  for (const w of [server, client]) {
    w.toWorker.write(1, (b, at) => (b[at] = K.STOP));
    w.toWorker.notify();
  }
  await Promise.all([server, client].map((w) => new Promise((resolve) => (w.worker.once("exit", resolve), setTimeout(() => w.worker.terminate(), 2000)))));
  if (sockets) for (const s of Object.values(sockets)) s.close();
  return { ...result, dropped: stats.dropped };
}

/**
 * The server alone split: the client is a fixed load generator (engine and socket in its own
 * worker, writing by itself, as a wireguard-go client would be its own process); only the
 * server's placement changes. The server's TCP reader (count, then CONSUMED) is on the main
 * thread in every mode, as user code would be.
 */
async function roundServer(mode, seconds) {
  const stats = { bytes: 0, dropped: 0 };
  const serverKey = privateKey();
  const clientKey = privateKey();
  const keyOf = (k) => new Engine().publicKey(k);
  let running = true;
  let serverSocket;
  let server;
  let serverEngine;
  let side;
  const inbound = [];
  let clientPort = 0;
  const notifyPending = { value: false };
  if (mode === "main") {
    serverEngine = makeEngine("server", serverKey, keyOf(clientKey));
    side = { scheduled: false, timer: undefined, stopped: false, unconsumed: 0, conn: -1, counts: new Float64Array(4) };
    const handler = handlerFor("server", serverEngine, {
      datagram: (to, bytes) => (side.counts[1]++, serverSocket.send(bytes, to.port, to.host)),
      conn: (conn) => (side.conn = conn),
      data: (conn, bytes) => {
        side.conn = conn;
        stats.bytes += bytes.length;
        side.unconsumed += bytes.length;
      },
      writable: ignore,
    });
    side.pump = () => {
      side.scheduled = false;
      if (side.stopped) return;
      // The reader takes what arrived at once, as a handler reading in a loop would.
      if (side.unconsumed > 0) serverEngine.commands.consumed(side.conn, side.unconsumed);
      side.unconsumed = 0;
      side.counts[2]++;
      const t = performance.now();
      const next = serverEngine.pump(t, inbound.splice(0));
      serverEngine.takeEvents(handler);
      side.counts[0] += performance.now() - t;
      clearTimeout(side.timer);
      const wait = next - performance.now();
      if (wait <= 0 || side.unconsumed > 0) side.schedule();
      else side.timer = setTimeout(side.pump, wait);
    };
    side.schedule = () => {
      if (side.scheduled || side.stopped) return;
      side.scheduled = true;
      setImmediate(side.pump);
    };
    serverSocket = await bindSocket((data, rinfo) => {
      inbound.push({ data, from: { host: rinfo.address, port: rinfo.port } });
      side.schedule();
    });
  } else {
    server = await spawnWorker({ role: "server", mode, key: serverKey, peerPublicKey: keyOf(clientKey) });
    if (mode === "b") {
      serverSocket = await bindSocket((data) => {
        if (!server.toWorker.write(1 + data.length, (b, at) => ((b[at] = K.DGRAM), b.set(data, at + 1)))) stats.dropped++;
        if (notifyPending.value) return;
        notifyPending.value = true;
        setImmediate(() => {
          notifyPending.value = false;
          server.toWorker.notify();
        });
      });
    }
  }
  const serverPort = serverSocket ? serverSocket.address().port : server.port;
  const client = await spawnWorker({ role: "client", mode: "a", key: clientKey, peerPublicKey: keyOf(serverKey), peerPort: serverPort, selfDrive: true });
  clientPort = client.port;
  let loop = Promise.resolve();
  if (server) {
    loop = (async () => {
      let conn = -1;
      while (running) {
        await server.toMain.dataAsync(100);
        let consumed = 0;
        server.toMain.drain((b, at, len) => {
          const v = new DataView(b.buffer, b.byteOffset + at, len);
          switch (b[at]) {
            case K.DGRAM:
              serverSocket.send(b.slice(at + 1, at + len), clientPort, HOST);
              break;
            case K.DATA:
              conn = v.getUint32(1, true);
              stats.bytes += len - 5;
              consumed += len - 5;
              break;
          }
        });
        if (consumed > 0) {
          server.toWorker.write(9, (b, at) => {
            const dv = new DataView(b.buffer, b.byteOffset + at, 9);
            b[at] = K.CONSUMED;
            dv.setUint32(1, conn, true);
            dv.setUint32(5, consumed, true);
          });
          server.toWorker.notify();
        }
      }
    })();
  }
  const result = await measureRound(seconds, stats, () => 0, [server ? server.busy : side.counts, client.busy]);
  running = false;
  await loop;
  if (side) {
    side.stopped = true;
    clearTimeout(side.timer);
  }
  await Promise.all([client, server].filter(Boolean).map(stopWorker));
  serverSocket?.close();
  return { ...result, dropped: stats.dropped };
}

/** Waits out a warm-up, then measures `seconds`: payload rate, CPU the process used, how busy each thread was. */
async function measureRound(seconds, stats, _workerBusy, busyArrays = []) {
  await new Promise((r) => setTimeout(r, 700));
  const bytes0 = stats.bytes;
  const cpu0 = process.cpuUsage();
  // Node's measure of how busy the main thread's event loop was; Bun and Deno lack it.
  const eventLoop = performance.eventLoopUtilization?.bind(performance) ?? (() => ({ utilization: Number.NaN }));
  const elu0 = eventLoop();
  const busy0 = busyArrays.map((a) => [...a]);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const elu = eventLoop(elu0);
  return {
    gbps: ((stats.bytes - bytes0) * 8) / (wall / 1000) / 1e9,
    cores: (cpu.user + cpu.system) / 1000 / wall,
    mainBusy: elu.utilization,
    workerBusy: busyArrays.map((a, i) => (a[0] - busy0[i][0]) / wall),
    // Per MiB of payload: datagrams each side sent, and its pumps.
    perMiB: busyArrays.map((a, i) => [(a[1] - busy0[i][1]) / ((stats.bytes - bytes0) / 2 ** 20), (a[2] - busy0[i][2]) / ((stats.bytes - bytes0) / 2 ** 20)]),
  };
}

if (isMainThread) {
  const SECONDS = Number(option("--seconds", 3));
  const ROUNDS = Number(option("--rounds", 3));
  const MODES = option("--modes", "main,a,b").split(",");
  // both: client and server both in this process and both placed by the mode (echo.mjs's bulk);
  // server: the client a fixed load generator in its own worker, only the server placed by the mode.
  const TOPOLOGY = option("--split", "both");
  console.log(`${runtimeName()}, ${os.cpus().length} cores, split ${TOPOLOGY}; load before ${load()}`);
  const all = Object.fromEntries(MODES.map((m) => [m, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of MODES) {
      const r = TOPOLOGY === "server" ? await roundServer(mode, SECONDS) : mode === "main" ? await roundMain(SECONDS) : await roundThreads(mode, SECONDS);
      all[mode].push(r);
      const busy = ` engines busy (server/client) ${r.workerBusy.map((x) => x.toFixed(2)).join("/")}; per MiB datagrams ${r.perMiB.map((x) => x[0].toFixed(0)).join("/")} pumps ${r.perMiB.map((x) => x[1].toFixed(0)).join("/")}`;
      console.log(`round ${round} ${mode.padEnd(4)} ${r.gbps.toFixed(3)} Gbit/s  cpu ${r.cores.toFixed(2)} cores  main ELU ${r.mainBusy.toFixed(2)}${busy}${r.dropped ? ` dropped ${r.dropped}` : ""}  load ${load()}`);
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const mode of MODES) {
    const g = all[mode].map((r) => r.gbps);
    const ratio = all[mode].map((r, i) => r.gbps / all[MODES[0]][i].gbps);
    console.log(`${mode.padEnd(4)} median ${median(g).toFixed(3)} Gbit/s (${Math.min(...g).toFixed(3)}–${Math.max(...g).toFixed(3)}); ×${MODES[0]} per round ${median(ratio).toFixed(2)} (${Math.min(...ratio).toFixed(2)}–${Math.max(...ratio).toFixed(2)})`);
  }
  console.log(`load after ${load()}`);
}
