#!/usr/bin/env node
// Client-side tasks for the interop tests. Run INSIDE a network namespace:
//
//   node client-tasks.mjs tcp-echo     HOST PORT BYTES [--from IP] [--timeout MS]
//   node client-tasks.mjs tcp-pingpong HOST PORT COUNT [--from IP] [--timeout MS]
//   node client-tasks.mjs tcp-read     HOST PORT       [--from IP] [--timeout MS]
//   node client-tasks.mjs udp-request  HOST PORT MESSAGE [--from IP] [--connect yes] [--timeout MS]
//     (--connect: a connected socket, which the kernel tells of ICMP errors: ECONNREFUSED, …)
//   node client-tasks.mjs echo-server  PORT [--host ADDR]     (runs until killed)
//
// For the benchmark (bench/programs.mjs is the server side), each reporting maxGapMs,
// the longest time the task saw no progress:
//   node client-tasks.mjs tcp-echo-rate HOST PORT SIZE SECONDS   SIZE-byte ping-pong for SECONDS
//   node client-tasks.mjs tcp-download  HOST PORT BYTES          asks for BYTES ("BYTES\n"), reads to EOF
//   node client-tasks.mjs tcp-upload    HOST PORT BYTES          sends BYTES, half-closes, reads the
//                                                                server's {"bytes","sha256"} line
//
// For the limits tests, one task that holds many connections and prints two lines:
//   node client-tasks.mjs tcp-many HOST PORT COUNT [--parallel N] [--tally yes]
//     opens COUNT connections to ports PORT, PORT+1, … (at most N connecting at once,
//     default 500), sends each one byte and waits for it to come back; then prints
//     {"served", "ms"} and keeps them all open. A line "close" on stdin ends them (FIN).
//     Once every one has closed, by us or by the server, it prints
//     {"closed", "errors": {code: count}} and exits. With --tally yes, a connection that
//     closes before its echo (refused, reset) is counted there instead of failing the task.
// Prints exactly one JSON line on stdout (echo-server: one line once listening).
// Exit code 0 on success; non-zero with {"error": ...} on failure or timeout
// (default timeout 20 s for the whole task). No dependencies.
import net from "node:net";
import dgram from "node:dgram";
import crypto from "node:crypto";

const DEFAULT_TIMEOUT_MS = 20_000;

class UsageError extends Error {}

function parseArgs(argv) {
  const positional = [];
  const flags = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith("--")) {
      const key = a.slice(2);
      const value = argv[i + 1];
      if (value === undefined) throw new UsageError(`missing value for ${a}`);
      flags[key] = value;
      i++;
    } else positional.push(a);
  }
  return { positional, flags };
}

let finished = false;
function finish(obj, code = obj && obj.error !== undefined ? 1 : 0) {
  if (finished) return;
  finished = true;
  process.stdout.write(`${JSON.stringify(obj)}\n`, () => process.exit(code));
}
function fail(error, code = 1, extra = {}) {
  finish({ error: String(error), ...extra }, code);
}

function errText(err) {
  return err?.code ? `${err.code}: ${err.message}` : String(err?.message ? err.message : err);
}

function needInt(name, v) {
  const n = Number(v);
  if (v === undefined || !Number.isInteger(n) || n < 0) throw new UsageError(`${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

function startTimeout(flags, onTimeout) {
  const ms = flags.timeout !== undefined ? Number(flags.timeout) : DEFAULT_TIMEOUT_MS;
  const t = setTimeout(onTimeout, ms);
  t.unref?.();
  return t;
}

function connect(host, port, flags) {
  const opts = { host, port };
  if (flags.from) opts.localAddress = flags.from;
  if (net.isIPv6(host)) opts.family = 6;
  else if (net.isIPv4(host)) opts.family = 4;
  return net.connect(opts);
}

function socketInfo(sock) {
  return {
    localAddress: sock.localAddress,
    localPort: sock.localPort,
    remoteAddress: sock.remoteAddress,
    remotePort: sock.remotePort,
  };
}

// --------------------------------------------------------------------------- tasks

function tcpEcho([host, portS, bytesS], flags) {
  const port = needInt("PORT", portS);
  const total = needInt("BYTES", bytesS);
  const t0 = performance.now();
  const sentHash = crypto.createHash("sha256");
  const recvHash = crypto.createHash("sha256");
  let sent = 0;
  let received = 0;
  let connectMs;
  let info = {};
  const progress = () => ({ sent, received });
  startTimeout(flags, () => fail("timeout", 1, progress()));
  const sock = connect(host, port, flags);
  sock.on("error", (err) => fail(errText(err), 1, progress()));
  sock.on("data", (d) => {
    received += d.length;
    recvHash.update(d);
  });
  sock.on("end", () => {
    if (sent < total) {
      fail("EOF before all data was sent", 1, progress());
      return sock.destroy();
    }
    finish({
      sent,
      received,
      sentSha256: sentHash.digest("hex"),
      receivedSha256: recvHash.digest("hex"),
      ms: Math.round(performance.now() - t0),
      connectMs,
      ...info,
    });
    sock.destroy();
  });
  sock.on("connect", async () => {
    connectMs = Math.round(performance.now() - t0);
    info = socketInfo(sock);
    try {
      while (sent < total) {
        const chunk = crypto.randomBytes(Math.min(64 * 1024, total - sent));
        sentHash.update(chunk);
        sent += chunk.length;
        if (!sock.write(chunk)) {
          await new Promise((resolve, reject) => {
            const onDrain = () => {
              sock.off("close", onClose);
              resolve();
            };
            const onClose = () => {
              sock.off("drain", onDrain);
              reject(new Error("socket closed while sending"));
            };
            sock.once("drain", onDrain);
            sock.once("close", onClose);
          });
        }
      }
      sock.end(); // half-close: keep reading the echo until EOF
    } catch (err) {
      fail(errText(err), 1, progress());
    }
  });
}

function tcpPingpong([host, portS, countS], flags) {
  const port = needInt("PORT", portS);
  const count = needInt("COUNT", countS);
  let done = 0;
  let t0;
  startTimeout(flags, () => fail("timeout", 1, { count: done }));
  const sock = connect(host, port, flags);
  sock.setNoDelay(true);
  sock.on("error", (err) => fail(errText(err), 1, { count: done }));
  sock.on("end", () => {
    if (done < count) fail("unexpected EOF", 1, { count: done });
  });
  const complete = () => {
    finish({ count: done, ms: Math.round(performance.now() - t0), ...socketInfo(sock) });
    sock.end();
  };
  sock.on("connect", () => {
    t0 = performance.now();
    if (count === 0) return complete();
    sock.write(Buffer.from([0]));
  });
  let pending = 0; // bytes received beyond the current round (should stay 0)
  sock.on("data", (d) => {
    pending += d.length;
    while (pending > 0 && done < count) {
      pending--;
      done++;
      if (done < count) sock.write(Buffer.from([done & 0xff]));
    }
    if (done >= count) complete();
  });
}

function tcpRead([host, portS], flags) {
  const port = needInt("PORT", portS);
  const chunks = [];
  const data = () => Buffer.concat(chunks).toString("utf8");
  let info = {};
  startTimeout(flags, () => fail("timeout", 1, { data: data(), ...info }));
  const sock = connect(host, port, flags);
  sock.on("connect", () => {
    info = socketInfo(sock);
  });
  sock.on("data", (d) => chunks.push(d));
  sock.on("error", (err) => fail(errText(err), 1, { data: data(), ...info }));
  sock.on("end", () => {
    finish({ data: data(), ...info });
    sock.destroy();
  });
}

function udpRequest([host, portS, message], flags) {
  const port = needInt("PORT", portS);
  if (message === undefined) throw new UsageError("MESSAGE missing");
  const v6 = net.isIPv6(host);
  const sock = dgram.createSocket(v6 ? "udp6" : "udp4");
  const t0 = performance.now();
  startTimeout(flags, () => fail("timeout"));
  sock.on("error", (err) => fail(errText(err)));
  sock.on("message", (msg, rinfo) => {
    const local = sock.address();
    finish({
      reply: msg.toString("utf8"),
      from: rinfo.address,
      fromPort: rinfo.port,
      localAddress: local.address,
      localPort: local.port,
      ms: Math.round(performance.now() - t0),
    });
    sock.close();
  });
  const data = Buffer.from(message, "utf8");
  const done = (err) => err && fail(errText(err));
  const send = flags.connect ? () => sock.connect(port, host, () => sock.send(data, done)) : () => sock.send(data, port, host, done);
  if (flags.from) sock.bind({ address: flags.from, port: 0 }, send);
  else send();
}

/**
 * TCP + UDP echo on PORT, and a TCP "info" service on PORT+1 that writes one JSON
 * line describing the connection ({remoteAddress, remotePort, localAddress, localPort})
 * and closes. Default host "::" (dual stack). Prints {listening, host, port} once ready.
 */
function echoServer([portS], flags) {
  const port = needInt("PORT", portS);
  const host = flags.host ?? "::";
  const tcp = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on("error", () => s.destroy());
    s.pipe(s); // echoes, and ends our side after the client half-closes
  });
  const info = net.createServer((s) => {
    s.on("error", () => s.destroy());
    s.end(`${JSON.stringify(socketInfo(s))}\n`);
  });
  const udp = dgram.createSocket({ type: net.isIPv4(host) ? "udp4" : "udp6", ipv6Only: false });
  udp.on("message", (msg, rinfo) => udp.send(msg, rinfo.port, rinfo.address));
  let ready = 0;
  const onReady = () => {
    if (++ready === 3) process.stdout.write(`${JSON.stringify({ listening: true, host, port })}\n`);
  };
  for (const s of [tcp, info, udp]) s.on("error", (err) => fail(errText(err)));
  tcp.listen({ port, host, ipv6Only: false }, onReady);
  info.listen({ port: port + 1, host, ipv6Only: false }, onReady);
  udp.bind({ port, address: host }, onReady);
  const stop = () => process.exit(0);
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

/** Tracks the longest stretch without progress, the stall a user would notice. */
function progressClock() {
  const start = performance.now();
  let last = start;
  let maxGap = 0;
  return {
    tick() {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
    },
    /** ms since start and the longest gap so far, counting the one still open. */
    report() {
      const now = performance.now();
      return { ms: Math.round(now - start), maxGapMs: Math.round(Math.max(maxGap, now - last)) };
    },
  };
}

function tcpEchoRate([host, portS, sizeS, secondsS], flags) {
  const port = needInt("PORT", portS);
  const size = needInt("SIZE", sizeS);
  const seconds = Number(secondsS);
  if (!(seconds > 0)) throw new UsageError(`SECONDS must be positive, got ${JSON.stringify(secondsS)}`);
  const message = crypto.randomBytes(size);
  let messages = 0;
  let clock;
  let received = 0;
  const result = () => ({ messages, ...clock?.report(), messagesPerSecond: clock ? Math.round((messages * 1000) / clock.report().ms) : 0 });
  startTimeout(flags, () => fail("timeout", 1, result()));
  const sock = connect(host, port, flags);
  sock.setNoDelay(true);
  sock.on("error", (err) => fail(errText(err), 1, result()));
  sock.on("end", () => fail("unexpected EOF", 1, result()));
  sock.on("connect", () => {
    clock = progressClock();
    sock.write(message);
  });
  sock.on("data", (d) => {
    received += d.length;
    while (received >= size) {
      received -= size;
      messages++;
      clock.tick();
      if (clock.report().ms >= seconds * 1000) {
        finish({ ...result(), ...socketInfo(sock) });
        return sock.destroy();
      }
      sock.write(message);
    }
  });
}

function tcpDownload([host, portS, bytesS], flags) {
  const port = needInt("PORT", portS);
  const wanted = needInt("BYTES", bytesS);
  const hash = crypto.createHash("sha256");
  let bytes = 0;
  let clock;
  const result = () => ({ bytes, ...clock?.report() });
  startTimeout(flags, () => fail("timeout", 1, result()));
  const sock = connect(host, port, flags);
  sock.on("error", (err) => fail(errText(err), 1, result()));
  sock.on("connect", () => {
    clock = progressClock();
    sock.write(`${wanted}\n`);
  });
  sock.on("data", (d) => {
    bytes += d.length;
    hash.update(d);
    clock.tick();
  });
  sock.on("end", () => {
    if (bytes !== wanted) return fail(`EOF after ${bytes} of ${wanted} bytes`, 1, result());
    finish({ ...result(), sha256: hash.digest("hex") });
  });
}

function tcpUpload([host, portS, bytesS], flags) {
  const port = needInt("PORT", portS);
  const total = needInt("BYTES", bytesS);
  const block = crypto.randomBytes(64 * 1024);
  const hash = crypto.createHash("sha256");
  let queued = 0;
  let sent = 0; // accepted by the kernel: it takes more only as the server acknowledges
  let clock;
  let reply = "";
  const result = () => ({ sent, ...clock?.report() });
  startTimeout(flags, () => fail("timeout", 1, result()));
  const sock = connect(host, port, flags);
  sock.on("error", (err) => fail(errText(err), 1, result()));
  sock.on("data", (d) => (reply += d));
  sock.on("end", () => {
    let server;
    try {
      server = JSON.parse(reply);
    } catch {
      return fail(`bad reply ${JSON.stringify(reply.slice(0, 200))}`, 1, result());
    }
    clock.tick();
    finish({ ...result(), sha256: hash.digest("hex"), serverBytes: server.bytes, serverSha256: server.sha256 });
  });
  sock.on("connect", async () => {
    clock = progressClock();
    try {
      while (queued < total) {
        const chunk = block.subarray(0, Math.min(block.length, total - queued));
        queued += chunk.length;
        hash.update(chunk);
        const flushed = new Promise((resolve, reject) => sock.write(chunk, (err) => (err ? reject(err) : resolve())));
        flushed.then(() => {
          sent += chunk.length;
          clock.tick();
        }, () => {});
        if (sock.writableNeedDrain) await new Promise((resolve) => sock.once("drain", resolve));
      }
      sock.end();
    } catch (err) {
      fail(errText(err), 1, result());
    }
  });
}

function tcpMany([host, portS, countS], flags) {
  const port = needInt("PORT", portS);
  const count = needInt("COUNT", countS);
  const parallel = flags.parallel !== undefined ? needInt("--parallel", flags.parallel) : 500;
  const tally = flags.tally === "yes";
  const t0 = performance.now();
  const sockets = [];
  const errors = {};
  let started = 0;
  let connecting = 0;
  let served = 0;
  let closed = 0;
  const progress = () => ({ started, served, closed, errors });
  // Only the connecting phase has a deadline: after it the test decides when to close.
  const timer = startTimeout(flags, () => fail("timeout", 1, progress()));
  const openNext = () => {
    while (connecting < parallel && started < count) {
      const sock = connect(host, 1 + ((port - 1 + started) % 65535), flags);
      started++;
      connecting++;
      sockets.push(sock);
      let echoed = false;
      sock.on("connect", () => sock.write(Buffer.from([1])));
      sock.once("data", () => {
        echoed = true;
        connecting--;
        if (++served === count) {
          clearTimeout(timer);
          process.stdout.write(`${JSON.stringify({ served, ms: Math.round(performance.now() - t0) })}\n`);
        }
        openNext();
      });
      sock.on("error", (err) => {
        errors[err.code ?? "error"] = (errors[err.code ?? "error"] ?? 0) + 1;
      });
      sock.on("close", () => {
        if (!echoed && !tally) return fail(`connection ${started} closed before its echo`, 1, progress());
        if (!echoed) {
          connecting--;
          openNext();
        }
        if (++closed === count) finish({ closed, errors });
      });
    }
  };
  openNext();
  let input = "";
  process.stdin.on("data", (d) => {
    input += d;
    if (input.includes("close\n")) for (const sock of sockets) sock.end();
  });
}

// --------------------------------------------------------------------------- main

const tasks = {
  "tcp-echo": tcpEcho,
  "tcp-pingpong": tcpPingpong,
  "tcp-read": tcpRead,
  "udp-request": udpRequest,
  "tcp-echo-rate": tcpEchoRate,
  "tcp-download": tcpDownload,
  "tcp-upload": tcpUpload,
  "echo-server": echoServer,
  "tcp-many": tcpMany,
};

const [task, ...rest] = process.argv.slice(2);
try {
  if (!tasks[task]) throw new UsageError(`unknown task ${JSON.stringify(task)}; expected one of ${Object.keys(tasks).join(", ")}`);
  const { positional, flags } = parseArgs(rest);
  tasks[task](positional, flags);
} catch (err) {
  fail(err instanceof UsageError ? err.message : errText(err), err instanceof UsageError ? 2 : 1);
}
