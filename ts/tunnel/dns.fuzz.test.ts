// Property tests for the resolver's reply parser: any datagram arriving from the network is
// an answer (addresses of the type asked, a TTL to cache it for) or a TunnelError ENOTFOUND,
// never another exception; answers we build from random records parse back to the records
// of the type asked, their smallest TTL (one with its top bit set counts as 0, RFC 2181 8),
// and for an empty answer its SOA's (RFC 2308 5).
// Seeded and deterministic: a failure prints the seed and case to replay (test/support/fuzz.ts).

import { describe, it } from "vitest";
import { check, concat, fuzz, hex, mutateBytes, parsesOrRejects, type Rng, THREW } from "../../test/support/fuzz.js";
import { formatIp, parseIp } from "../ip.js";
import { encodeQuery, parseReply } from "./dns.js";
import { TunnelError } from "./errors.js";

const A = 1;
const AAAA = 28;
const CNAME = 5;
const SOA = 6;
const TXT = 16;
const IN = 1;
const MAX_TTL_S = 3600;

interface ResourceRecord {
  /** The owner name on the wire: a pointer to the question's name, or a name written out. */
  owner: Uint8Array;
  type: number;
  klass: number;
  ttl: number;
  rdata: Uint8Array;
}

const POINTER_TO_QUESTION = new Uint8Array([0xc0, 12]);

function u16(value: number): number[] {
  return [value >> 8, value & 0xff];
}
function u32(value: number): number[] {
  return [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
}

function encodeName(name: string): Uint8Array {
  return encodeQuery(0, name, 0).subarray(12, -4);
}

function randomName(rng: Rng): string {
  const labels = [];
  for (let i = rng.range(1, 4); i > 0; i--) labels.push(rng.text(rng.range(1, 12), "abcxyz019-"));
  return labels.join(".");
}

function encodeRecord(record: ResourceRecord): Uint8Array {
  return concat(record.owner, new Uint8Array([...u16(record.type), ...u16(record.klass), ...u32(record.ttl), ...u16(record.rdata.length)]), record.rdata);
}

function encodeReply(id: number, name: string, type: number, flags: number, answers: ResourceRecord[], authority: ResourceRecord[]): Uint8Array {
  const header = new Uint8Array([...u16(id), ...u16(flags), ...u16(1), ...u16(answers.length), ...u16(authority.length), ...u16(0)]);
  return concat(header, encodeQuery(id, name, type).subarray(12), ...answers.map(encodeRecord), ...authority.map(encodeRecord));
}

function randomTtl(rng: Rng): number {
  return rng.pick([0, 1, 30, 300, 3599, 3600, 3601, 86400, 0x7fffffff, 0xffffffff, rng.next()]);
}

function randomRecord(rng: Rng, type: number): ResourceRecord {
  const owner = rng.chance(0.6) ? POINTER_TO_QUESTION : encodeName(randomName(rng));
  const klass = rng.chance(0.9) ? IN : rng.pick([3, 255, rng.int(65536)]);
  const ttl = randomTtl(rng);
  switch (rng.int(5)) {
    case 0:
      return { owner, type: A, klass, ttl, rdata: rng.bytes(4) };
    case 1:
      return { owner, type: AAAA, klass, ttl, rdata: rng.bytes(16) };
    case 2:
      return { owner, type: CNAME, klass, ttl, rdata: encodeName(randomName(rng)) };
    case 3:
      return { owner, type: TXT, klass, ttl, rdata: rng.bytes(rng.int(40)) };
    default:
      return { owner, type, klass, ttl, rdata: rng.bytes(type === A ? 4 : 16) };
  }
}

function randomSoa(rng: Rng): ResourceRecord {
  const names = [POINTER_TO_QUESTION, encodeName(randomName(rng))];
  const rdata = concat(rng.pick(names), rng.pick(names), new Uint8Array([...u32(rng.next()), ...u32(3600), ...u32(600), ...u32(86400), ...u32(randomTtl(rng))]));
  return { owner: rng.chance(0.5) ? POINTER_TO_QUESTION : encodeName(randomName(rng)), type: SOA, klass: IN, ttl: randomTtl(rng), rdata };
}

interface Case {
  id: number;
  name: string;
  type: number;
  answers: ResourceRecord[];
  authority: ResourceRecord[];
  reply: Uint8Array;
}

function randomCase(rng: Rng): Case {
  const id = rng.int(65536);
  const name = randomName(rng);
  const type = rng.pick([A, AAAA]);
  const answers = Array.from({ length: rng.int(6) }, () => randomRecord(rng, type));
  const authority = Array.from({ length: rng.int(3) }, () => (rng.chance(0.6) ? randomSoa(rng) : randomRecord(rng, type)));
  const flags = 0x8180 | (rng.chance(0.1) ? rng.pick([2, 3, 5]) : 0);
  return { id, name, type, answers, authority, reply: encodeReply(id, name, type, flags, answers, authority) };
}

/** Parses, allowing only a TunnelError ENOTFOUND; checks what a reply promises. */
function parseChecked(data: Uint8Array, id: number, name: string, type: number, overTcp: boolean) {
  const input = () => `${name} type ${type} id ${id}${overTcp ? " over TCP" : ""}: ${hex(data)}`;
  const reply = parsesOrRejects(() => parseReply(data, id, name, type, overTcp), TunnelError, input, (error) => check((error as TunnelError).code === "ENOTFOUND", `code ${(error as TunnelError).code}`, input));
  if (reply === THREW) return reply;
  check(Number.isInteger(reply.rcode) && reply.rcode >= 0 && reply.rcode <= 15, `rcode ${reply.rcode}`, input);
  check(typeof reply.truncated === "boolean" && (!reply.truncated || (!overTcp && reply.addresses.length === 0)), "truncated only over UDP, without records", input);
  for (const address of reply.addresses) check(parseIp(address)?.family === (type === A ? 4 : 6), `address ${address} of the type asked`, input);
  check(Number.isInteger(reply.ttl) && reply.ttl >= 0 && reply.ttl <= 0xffffffff, `ttl ${reply.ttl}`, input);
  if (reply.addresses.length > 0) check(reply.ttl <= MAX_TTL_S, `ttl ${reply.ttl} above the cap`, input);
  return reply;
}

describe("DNS replies from the network", () => {
  it("an answer or ENOTFOUND, for mutated and random datagrams", () => {
    fuzz("dns parseReply", { seed: 0xd45, cases: 3000 }, (rng) => {
      const sample = randomCase(rng);
      const questionEnd = encodeQuery(0, sample.name, sample.type).length;
      let data: Uint8Array;
      const choice = rng.int(10);
      if (choice < 5) data = concat(sample.reply.subarray(0, questionEnd), mutateBytes(rng, sample.reply.subarray(questionEnd))); // past the question: the records
      else if (choice < 9) data = mutateBytes(rng, sample.reply);
      else data = rng.bytes(rng.int(120));
      parseChecked(data, sample.id, sample.name, sample.type, rng.chance(0.5));
    });
  });

  it("an answer cut short anywhere is ENOTFOUND or what its whole records say, never another error", () => {
    fuzz("dns parseReply truncated", { seed: 0x7c, cases: 60 }, (rng) => {
      const sample = randomCase(rng);
      for (let cut = 0; cut <= sample.reply.length; cut++) parseChecked(sample.reply.subarray(0, cut), sample.id, sample.name, sample.type, true);
    });
  });

  it("round trip: the records of the type asked, their smallest TTL; for none, the SOA's TTL and MINIMUM, the smaller", () => {
    fuzz("dns parseReply round trip", { seed: 0x27, cases: 2000 }, (rng) => {
      const sample = randomCase(rng);
      const overTcp = rng.chance(0.5);
      const reply = parseChecked(sample.reply, sample.id, sample.name, sample.type, overTcp);
      const input = () => `${sample.name} ${sample.type}: ${hex(sample.reply)}`;
      check(reply !== THREW, "a valid reply parses", input);
      const taken = sample.answers.filter((record) => record.klass === IN && record.type === sample.type && record.rdata.length === (sample.type === A ? 4 : 16));
      check(reply.addresses.join() === taken.map((record) => formatIp(record.rdata)).join(), `addresses ${reply.addresses}`, input);
      const soa = sample.authority.find((record) => record.type === SOA && record.klass === IN);
      const minimum = (rdata: Uint8Array) => new DataView(rdata.buffer, rdata.byteOffset + rdata.length - 4).getUint32(0);
      // RFC 2181 8: a TTL with its top bit set counts as 0.
      const read = (value: number) => (value >= 0x8000_0000 ? 0 : value);
      const ttl = taken.length > 0 ? Math.min(MAX_TTL_S, ...taken.map((record) => read(record.ttl))) : soa ? Math.min(read(soa.ttl), read(minimum(soa.rdata))) : 0;
      check(reply.ttl === ttl, `ttl ${reply.ttl}, not ${ttl}`, input);
    });
  });
});
