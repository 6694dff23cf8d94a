import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { pubkey } from "../keys.js";
import { ConfigStore, defaultConfigDir, StoreError } from "./config-store.js";

let dir: string;
beforeEach(() => void (dir = mkdtempSync(join(tmpdir(), "wgn-store-"))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const mode = (path: string) => statSync(path).mode & 0o777;
const posix = process.platform !== "win32";

describe("ConfigStore", () => {
  it("makes the server's key and subnets once, 0600, and reuses them", () => {
    const first = new ConfigStore(dir).server();
    expect(first.address[0]).toBe("10.77.0.1/24");
    expect(first.address[1]).toMatch(/^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::1\/64$/);
    if (posix) expect(mode(join(dir, "server.json"))).toBe(0o600);
    if (posix) expect(mode(join(dir, "peers"))).toBe(0o700);
    expect(new ConfigStore(dir).server()).toEqual(first); // a restart reads the same
  });

  it("gives each peer its own key and the lowest free IPv4 and IPv6 addresses", () => {
    const store = new ConfigStore(dir);
    const [, gateway6] = store.server().address;
    const prefix6 = gateway6.replace(/::1\/64$/, "::");
    expect(store.ensurePeers(3).map((peer) => [peer.name, ...peer.address])).toEqual([
      ["peer1", "10.77.0.2/32", `${prefix6}2/128`],
      ["peer2", "10.77.0.3/32", `${prefix6}3/128`],
      ["peer3", "10.77.0.4/32", `${prefix6}4/128`],
    ]);
    expect(store.removePeer("peer2")).toBe(true);
    expect(store.addPeer("phone").address[0]).toBe("10.77.0.3/32");
    const phone = store.peers().find((peer) => peer.name === "phone")!;
    expect(phone.publicKey).toBe(pubkey(phone.privateKey));
    if (posix) expect(mode(join(dir, "peers", "phone.json"))).toBe(0o600);
    expect(new Set(store.peers().map((peer) => peer.privateKey)).size).toBe(3);
    expect(store.ensurePeers(1).map((peer) => peer.name)).toEqual(["peer1", "peer3", "phone"]); // nothing added twice
  });

  it("refuses bad and duplicate names, and removing what is not there", () => {
    const store = new ConfigStore(dir);
    store.addPeer("laptop");
    expect(() => store.addPeer("laptop")).toThrow(/already exists/);
    for (const bad of ["", "../x", "a b", "-x", "x".repeat(33)]) expect(() => store.addPeer(bad)).toThrow(StoreError);
    expect(store.removePeer("nobody")).toBe(false);
    expect(store.removePeer("../server")).toBe(false);
  });

  it("writes client configs 0600, with the gateway as DNS, and removes them with their peer", () => {
    const store = new ConfigStore(dir);
    const server = store.server();
    const tablet = store.addPeer("tablet");
    const { path, text } = store.writeClientConfig(tablet, { endpoint: "gw.example.test:51820", mtu: 1380 });
    expect(path).toBe(join(dir, "tablet.conf"));
    expect(readFileSync(path, "utf8")).toBe(text);
    const gateway6 = server.address[1].replace("/64", "");
    expect(text).toBe(
      `[Interface]\nPrivateKey = ${tablet.privateKey}\nAddress = ${tablet.address.join(", ")}\nDNS = 10.77.0.1, ${gateway6}\nMTU = 1380\n\n` +
        `[Peer]\nPublicKey = ${pubkey(server.privateKey)}\nAllowedIPs = 0.0.0.0/0, ::/0\nEndpoint = gw.example.test:51820\n`,
    );
    if (posix) expect(mode(path)).toBe(0o600);
    store.removePeer("tablet");
    expect(() => statSync(path)).toThrow();
  });

  it("remembers the endpoint configs are written with", () => {
    const store = new ConfigStore(dir);
    store.saveEndpoint("192.0.2.1:51820");
    expect(new ConfigStore(dir).server().endpoint).toBe("192.0.2.1:51820");
  });

  it("names the file and the problem when a file is bad", () => {
    const store = new ConfigStore(dir);
    store.addPeer("peer1");
    const serverFile = join(dir, "server.json");
    const good = readFileSync(serverFile, "utf8");
    writeFileSync(serverFile, "{ not json");
    expect(() => store.server()).toThrow(`${serverFile}: not valid JSON`);
    writeFileSync(serverFile, JSON.stringify({ ...JSON.parse(good), privateKey: "short" }));
    expect(() => store.server()).toThrow(new RegExp(`^${serverFile}: privateKey: expected 44 base64`));
    writeFileSync(serverFile, JSON.stringify({ ...JSON.parse(good), address: ["10.0.0.1/24"] }));
    expect(() => store.server()).toThrow(/server\.json: address: expected/);
    writeFileSync(join(dir, "peers", "peer1.json"), "[]");
    expect(() => store.peers()).toThrow(/peer1\.json: expected a JSON object/);
  });
});

describe("defaultConfigDir", () => {
  it("follows XDG_CONFIG_HOME, else ~/.config, and %APPDATA% on Windows", () => {
    expect(defaultConfigDir({ XDG_CONFIG_HOME: "/x" }, "linux", "/home/u")).toBe(join("/x", "wg-netstack"));
    expect(defaultConfigDir({}, "linux", "/home/u")).toBe(join("/home/u", ".config", "wg-netstack"));
    expect(defaultConfigDir({}, "darwin", "/Users/u")).toBe(join("/Users/u", ".config", "wg-netstack"));
    expect(defaultConfigDir({ APPDATA: "C:\\Users\\u\\AppData\\Roaming" }, "win32", "C:\\Users\\u")).toBe(join("C:\\Users\\u\\AppData\\Roaming", "wg-netstack"));
  });
});
