// A tiny authoritative DNS server over UDP for tests: answers A and AAAA queries for the
// names it is given, NXDOMAIN for other names, and an empty answer for other types of a known name.
//
//   node dns-server.mjs HOST PORT NAME=IP ...      prints "listening" once bound
//                                                  (IPv4 for A, IPv6 for AAAA; a name may come twice)
//
// It knows nothing else: the tests point the gateway's --dns-upstream here so that no
// query ever reaches a real resolver.
import dgram from "node:dgram";

const [host, port, ...records] = process.argv.slice(2);
/** The 16 bytes of an IPv6 address ("::" once at most, no embedded IPv4). */
function ipv6Bytes(text) {
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const groups = (part) => (part ? part.split(":").map((group) => parseInt(group, 16)) : []);
  const front = groups(head);
  const back = groups(tail);
  const words = [...front, ...Array(8 - front.length - back.length).fill(0), ...back];
  return words.flatMap((word) => [word >> 8, word & 0xff]);
}
/** name -> { 1 (A): [address bytes…], 28 (AAAA): [address bytes…] } */
const names = new Map();
for (const [name, ip] of records.map((record) => record.split("="))) {
  const entry = names.get(name.toLowerCase()) ?? { 1: [], 28: [] };
  if (ip.includes(":")) entry[28].push(ipv6Bytes(ip));
  else entry[1].push(ip.split(".").map(Number));
  names.set(name.toLowerCase(), entry);
}

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
  const known = names.get(q.name);
  const addresses = known?.[q.type] ?? [];
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2); // id
  header.writeUInt16BE(0x8400 | (query.readUInt16BE(2) & 0x0100) | (known ? 0 : 3), 2); // response, authoritative, RD copied; NXDOMAIN
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(addresses.length, 6);
  // Name pointer to the question (offset 12), the type asked, class IN, TTL 60, the address.
  const answer = Buffer.from(addresses.flatMap((address) => [0xc0, 12, 0, q.type, 0, 1, 0, 0, 0, 60, 0, address.length, ...address]));
  socket.send(Buffer.concat([header, query.subarray(12, q.end), answer]), from.port, from.address);
});
socket.bind(Number(port), host, () => console.log("listening"));
