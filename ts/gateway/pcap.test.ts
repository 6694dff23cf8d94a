import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { PcapWriter } from "./pcap.js";

const hasTshark = spawnSync("tshark", ["--version"]).status === 0;
// CI installs tshark (build.mjs TEST_PKGS): there a skip would hide that nothing was checked.
if (!hasTshark && process.env.CI) throw new Error("tshark is missing: `node build.mjs --install-deps` installs it");
if (!hasTshark) console.log("[pcap] tshark not found: the read-back test is skipped");

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** An IPv4 UDP datagram (checksums left zero: tshark does not verify them by default). */
function ipv4Udp(src: number[], dst: number[], srcPort: number, dstPort: number, payload: Uint8Array): Uint8Array {
  const packet = new Uint8Array(28 + payload.length);
  const view = new DataView(packet.buffer);
  packet[0] = 0x45; // version 4, 20-byte header
  view.setUint16(2, packet.length);
  packet[8] = 64; // TTL
  packet[9] = 17; // UDP
  packet.set(src, 12);
  packet.set(dst, 16);
  view.setUint16(20, srcPort);
  view.setUint16(22, dstPort);
  view.setUint16(24, 8 + payload.length);
  packet.set(payload, 28);
  return packet;
}

/** An IPv6 TCP SYN. */
function ipv6Syn(src: number[], dst: number[], srcPort: number, dstPort: number): Uint8Array {
  const packet = new Uint8Array(40 + 20);
  const view = new DataView(packet.buffer);
  packet[0] = 0x60;
  view.setUint16(4, 20); // payload length
  packet[6] = 6; // TCP
  packet[7] = 64; // hop limit
  packet.set(src, 8);
  packet.set(dst, 24);
  view.setUint16(40, srcPort);
  view.setUint16(42, dstPort);
  packet[52] = 5 << 4; // data offset: 20 bytes
  packet[53] = 0x02; // SYN
  view.setUint16(54, 65535); // window
  return packet;
}

const v6 = (last: number) => [0xfd, 0, ...new Array(13).fill(0), last];

describe("PcapWriter", () => {
  it("writes a pcap header and records that name each packet's length and time", async () => {
    dir = mkdtempSync(join(tmpdir(), "wgn-pcap-"));
    const file = join(dir, "out.pcap");
    const writer = await PcapWriter.open(file);
    writer.write(ipv4Udp([10, 0, 0, 2], [192, 0, 2, 53], 5353, 53, new Uint8Array(12)), 1_700_000_000_250.5);
    await writer.close();
    const bytes = readFileSync(file);
    expect(bytes.readUInt32LE(0)).toBe(0xa1b2c3d4);
    expect(bytes.readUInt32LE(20)).toBe(101); // LINKTYPE_RAW
    expect([bytes.readUInt32LE(24), bytes.readUInt32LE(28)]).toEqual([1_700_000_000, 250_500]);
    expect([bytes.readUInt32LE(32), bytes.readUInt32LE(36)]).toEqual([40, 40]);
    expect(bytes.length).toBe(24 + 16 + 40);
    if (process.platform !== "win32") expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it.skipIf(!hasTshark)("gives a file tshark reads, IPv4 and IPv6 alike", async () => {
    dir = mkdtempSync(join(tmpdir(), "wgn-pcap-"));
    const file = join(dir, "out.pcap");
    const writer = await PcapWriter.open(file);
    writer.write(ipv4Udp([10, 0, 0, 2], [192, 0, 2, 53], 5353, 53, new TextEncoder().encode("hello")));
    writer.write(ipv6Syn(v6(2), v6(7), 40000, 443));
    await writer.close();
    const fields = ["ip.src", "ip.dst", "udp.dstport", "ipv6.src", "ipv6.dst", "tcp.dstport", "tcp.flags.syn"];
    const result = spawnSync("tshark", ["-r", file, "-T", "fields", ...fields.flatMap((f) => ["-e", f])], { encoding: "utf8", timeout: 30_000 });
    expect({ status: result.status, stderr: result.stderr }).toMatchObject({ status: 0 });
    expect(result.stdout.trim().split("\n")).toEqual(["10.0.0.2\t192.0.2.53\t53\t\t\t\t", "\t\t\tfd00::2\tfd00::7\t443\t1"]);
  });

  it("rejects a path it cannot create", async () => {
    dir = mkdtempSync(join(tmpdir(), "wgn-pcap-"));
    await expect(PcapWriter.open(join(dir, "no-such-dir", "out.pcap"))).rejects.toMatchObject({ code: "ENOENT" });
  });
});
