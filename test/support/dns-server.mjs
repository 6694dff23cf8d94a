// A tiny authoritative DNS server over UDP for tests: answers A queries for the names it
// is given, NXDOMAIN for other names, and an empty answer for other types of a known name.
//
//   node dns-server.mjs HOST PORT NAME=IPV4 ...      prints "listening" once bound
//
// It knows nothing else: the tests point the gateway's --dns-upstream here so that no
// query ever reaches a real resolver.
import dgram from "node:dgram";

const [host, port, ...records] = process.argv.slice(2);
const names = new Map(records.map((record) => record.split("=")).map(([name, ip]) => [name.toLowerCase(), ip.split(".").map(Number)]));

/** The question's name (lower case), type, and where the question ends; undefined if malformed. */
function question(query) {
  const labels = [];
  let at = 12;
  while (at < query.length && query[at] !== 0) {
    const length = query[at];
    if (length > 63 || at + 1 + length > query.length) return undefined;
    labels.push(query.subarray(at + 1, at + 1 + length).toString("latin1"));
    at += 1 + length;
  }
  if (at + 5 > query.length) return undefined;
  return { name: labels.join(".").toLowerCase(), type: query.readUInt16BE(at + 1), end: at + 5 };
}

const socket = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
socket.on("message", (query, from) => {
  if (query.length < 12 || query.readUInt16BE(4) !== 1) return;
  const q = question(query);
  if (!q) return;
  const address = names.get(q.name);
  const answers = address && q.type === 1 ? 1 : 0;
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2); // id
  header.writeUInt16BE(0x8400 | (query.readUInt16BE(2) & 0x0100) | (address ? 0 : 3), 2); // response, authoritative, RD copied; NXDOMAIN
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers, 6);
  // Name pointer to the question (offset 12), type A, class IN, TTL 60, 4 bytes of address.
  const answer = answers ? Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...address]) : Buffer.alloc(0);
  socket.send(Buffer.concat([header, query.subarray(12, q.end), answer]), from.port, from.address);
});
socket.bind(Number(port), host, () => console.log("listening"));
