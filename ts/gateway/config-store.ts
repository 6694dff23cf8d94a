// The gateway's config folder: the server's key and tunnel subnets, one JSON file per
// peer, and each peer's wg-quick config. Secret files are 0600 and written whole (temp
// file + rename), so a reader — the running gateway polling for peers — never sees half
// of one, and `peer add` in another process is picked up without a restart.
//
//   DIR/server.json        { privateKey, address: [gateway v4/24, gateway v6/64], endpoint? }
//   DIR/peers/NAME.json    { privateKey, address: [peer v4/32, peer v6/128] }
//   DIR/NAME.conf          the config to give the client (wg-quick format), DNS = the gateway

import { randomBytes } from "node:crypto";
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { clientConfig } from "../client-config.js";
import { ConfigError, decodeKey, isRecord, maskHostBits } from "../config.js";
import { formatIp, parseCidr, parseHostEndpoint, type Cidr } from "../ip.js";
import { genkey, pubkey } from "../keys.js";

/** A problem with the config folder; the message names the file. */
export class StoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StoreError";
  }
}

export interface ServerRecord {
  privateKey: string;
  /** The gateway's own tunnel addresses with their subnets: [IPv4/24, IPv6/64]. Also the DNS resolver's. */
  address: [string, string];
  /** Where clients reach the gateway, as last served ("host:port"): what `peer add` writes into configs. */
  endpoint?: string;
}

export interface PeerRecord {
  name: string;
  privateKey: string;
  publicKey: string;
  /** [IPv4/32, IPv6/128] inside the gateway's subnets. */
  address: [string, string];
}

const DEFAULT_IPV4_SUBNET = "10.77.0.1/24";
/** A `peer add` takes milliseconds: a lock held longer than this was left by a process that died. */
const ADD_LOCK_STALE_MS = 5_000;
const PEER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;

/** $XDG_CONFIG_HOME/wg-netstack or ~/.config/wg-netstack; %APPDATA%\wg-netstack on Windows. */
export function defaultConfigDir(env: Record<string, string | undefined> = process.env, platform = process.platform, home = os.homedir()): string {
  if (platform === "win32") return join(env.APPDATA || join(home, "AppData", "Roaming"), "wg-netstack");
  return join(env.XDG_CONFIG_HOME || join(home, ".config"), "wg-netstack");
}

export class ConfigStore {
  constructor(readonly dir: string) {}

  get #serverFile(): string {
    return join(this.dir, "server.json");
  }
  get #peersDir(): string {
    return join(this.dir, "peers");
  }

  /** The server's record; made (new key, random IPv6 ULA subnet) on first use. */
  server(): ServerRecord {
    const file = this.#serverFile;
    if (!existsSync(file)) {
      const record: ServerRecord = { privateKey: genkey(), address: [DEFAULT_IPV4_SUBNET, randomUlaGateway()] };
      this.#ensureDirs();
      try {
        writeSecret(file, record, true);
      } catch (error) {
        if (!existsSync(file)) throw error; // else another process made it first: use theirs
      }
    }
    const value = readJson(file);
    key(value.privateKey, file, "privateKey");
    const address = addressPair(value.address, file, [24, 64]);
    // Checked as clientConfig will read it, so `peer add` does not fail on it later.
    if (value.endpoint !== undefined && (typeof value.endpoint !== "string" || !parseHostEndpoint(value.endpoint))) {
      throw new StoreError(`${file}: endpoint: expected a string like 192.0.2.1:51820 or vpn.example.com:51820`);
    }
    return { privateKey: value.privateKey as string, address, ...(value.endpoint === undefined ? {} : { endpoint: value.endpoint as string }) };
  }

  /** Records where clients reach the gateway, for configs written later by `peer add`. */
  saveEndpoint(endpoint: string): void {
    // Never written unless server() would read it back.
    if (!parseHostEndpoint(endpoint)) throw new StoreError(`${this.#serverFile}: endpoint: ${JSON.stringify(endpoint)} is not host:port`);
    const server = this.server();
    if (server.endpoint !== endpoint) writeSecret(this.#serverFile, { ...server, endpoint });
  }

  /** Every peer, by name. A bad file is a StoreError naming it. */
  peers(): PeerRecord[] {
    const { peers, broken } = this.scanPeers();
    if (broken[0]) throw broken[0].error;
    return peers;
  }

  /** Every peer whose file reads well, by name, and the files that do not, each with its StoreError. */
  scanPeers(): { peers: PeerRecord[]; broken: { name: string; error: StoreError }[] } {
    const peers: PeerRecord[] = [];
    const broken: { name: string; error: StoreError }[] = [];
    if (!existsSync(this.#peersDir)) return { peers, broken };
    const names = readdirSync(this.#peersDir)
      .filter((file) => file.endsWith(".json"))
      .map((file) => file.slice(0, -5))
      .filter((name) => PEER_NAME.test(name))
      .sort();
    for (const name of names) {
      try {
        peers.push(this.#readPeer(name));
      } catch (error) {
        if (!(error instanceof StoreError)) throw error;
        if (existsSync(this.peerPath(name))) broken.push({ name, error }); // else removed meanwhile
      }
    }
    return { peers, broken };
  }

  /** Where a peer's record is kept. */
  peerPath(name: string): string {
    return join(this.#peersDir, `${name}.json`);
  }

  /** A new peer with a fresh key and the lowest free addresses. */
  addPeer(name: string): PeerRecord {
    if (!PEER_NAME.test(name)) {
      throw new StoreError(`peer name ${JSON.stringify(name)}: use 1 to 32 letters, digits, "_", "-" or "." (not first)`);
    }
    const [gateway4, gateway6] = this.server().address.map((text) => parseCidr(text)!);
    // Another process's `peer add` may be choosing the same lowest free address: one at a time.
    return this.#whileAdding(() => this.#addPeer(name, gateway4!, gateway6!));
  }

  #addPeer(name: string, gateway4: Cidr, gateway6: Cidr): PeerRecord {
    const peers = this.peers();
    if (peers.some((peer) => peer.name === name)) throw new StoreError(`peer ${name} already exists in ${this.dir}`);
    const used = new Set(peers.map((peer) => parseCidr(peer.address[0])!.bytes.at(-1)!));
    used.add(gateway4.bytes.at(-1)!);
    let index = 2;
    while (used.has(index)) index++;
    if (index > 254) throw new StoreError(`no free address left in ${formatCidr(maskHostBits(gateway4))} for peer ${name}`);
    const privateKey = genkey();
    const address: [string, string] = [`${formatIp(hostAt(gateway4, index))}/32`, `${formatIp(hostAt(gateway6, index))}/128`];
    // Created exclusively: two `peer add` runs with one name cannot both win.
    writeSecret(join(this.#peersDir, `${name}.json`), { privateKey, address }, true);
    return { name, privateKey, publicKey: pubkey(privateKey), address };
  }

  /** Makes sure peer1 … peerN exist; returns every peer. */
  ensurePeers(count: number): PeerRecord[] {
    const names = new Set(this.peers().map((peer) => peer.name));
    for (let i = 1; i <= count; i++) if (!names.has(`peer${i}`)) this.addPeer(`peer${i}`);
    return this.peers();
  }

  /** Deletes a peer and its client config; false if there was none. */
  removePeer(name: string): boolean {
    const file = join(this.#peersDir, `${name}.json`);
    if (!PEER_NAME.test(name) || !existsSync(file)) return false;
    unlinkSync(file);
    rmSync(this.clientConfigPath(name), { force: true });
    return true;
  }

  clientConfigPath(name: string): string {
    return join(this.dir, `${name}.conf`);
  }

  /**
   * Writes a peer's wg-quick config (0600: it holds the peer's private key): its keys and
   * addresses, the gateway as DNS server, everything routed through the tunnel.
   */
  writeClientConfig(peer: PeerRecord, options: { endpoint: string; mtu?: number }): { path: string; text: string } {
    const server = this.server();
    const text = clientConfig({
      privateKey: peer.privateKey,
      address: peer.address,
      serverPublicKey: pubkey(server.privateKey),
      endpoint: options.endpoint,
      dns: server.address.map((cidr) => cidr.slice(0, cidr.indexOf("/"))),
      ...(options.mtu === undefined ? {} : { mtu: options.mtu }),
    });
    const path = this.clientConfigPath(peer.name);
    writeSecret(path, text);
    return { path, text };
  }

  #readPeer(name: string): PeerRecord {
    const file = this.peerPath(name);
    const value = readJson(file);
    const privateKey = key(value.privateKey, file, "privateKey");
    return { name, privateKey, publicKey: pubkey(privateKey), address: addressPair(value.address, file, [32, 128]) };
  }

  /** Runs `body` holding the folder's add lock (a directory: making one is atomic), waiting for another holder. */
  #whileAdding<T>(body: () => T): T {
    this.#ensureDirs();
    const lock = join(this.#peersDir, ".adding");
    const start = Date.now();
    for (;;) {
      try {
        mkdirSync(lock);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw new StoreError(`${lock}: cannot make: ${(error as NodeJS.ErrnoException).code}`);
      }
      let age = 0;
      try {
        age = Date.now() - statSync(lock).mtimeMs;
      } catch {
        continue; // released meanwhile
      }
      // Older than any add takes: left by a process that died holding it.
      if (age > ADD_LOCK_STALE_MS) rmSync(lock, { recursive: true, force: true });
      else if (Date.now() - start > ADD_LOCK_STALE_MS) throw new StoreError(`${lock}: another peer add holds it`);
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
    try {
      return body();
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }

  #ensureDirs(): void {
    try {
      mkdirSync(this.#peersDir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new StoreError(`${this.#peersDir}: cannot make the config folder: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  }
}

function readJson(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new StoreError(`${file}: cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new StoreError(`${file}: not valid JSON`);
  }
  if (!isRecord(value)) throw new StoreError(`${file}: expected a JSON object`);
  return value;
}

function key(value: unknown, file: string, field: string): string {
  try {
    decodeKey(value, field);
  } catch (error) {
    if (error instanceof ConfigError) throw new StoreError(`${file}: ${error.message}`);
    throw error;
  }
  return value as string;
}

/** ["v4/len", "v6/len"] with the given prefix lengths. */
function addressPair(value: unknown, file: string, [prefix4, prefix6]: [number, number]): [string, string] {
  const [v4, v6] = Array.isArray(value) && value.length === 2 ? value.map((item) => (typeof item === "string" ? parseCidr(item) : undefined)) : [];
  if (!v4 || !v6 || v4.family !== 4 || v6.family !== 6 || v4.prefix !== prefix4 || v6.prefix !== prefix6) {
    throw new StoreError(`${file}: address: expected ["an IPv4 address/${prefix4}", "an IPv6 address/${prefix6}"]`);
  }
  return [formatCidr(v4), formatCidr(v6)];
}

const formatCidr = (cidr: Cidr) => `${formatIp(cidr)}/${cidr.prefix}`;

/** Host number `index` of a subnet (the last byte; enough for a /24 and the same index in a /64). */
function hostAt(subnet: Cidr, index: number): Uint8Array {
  const bytes = maskHostBits(subnet).bytes.slice();
  bytes[bytes.length - 1] = index;
  return bytes;
}

/** fdXX:XXXX:XXXX::1/64 with a random 40-bit global ID (RFC 4193), so two gateways' subnets do not clash. */
function randomUlaGateway(): string {
  const bytes = new Uint8Array(16);
  bytes[0] = 0xfd;
  bytes.set(randomBytes(5), 1);
  bytes[15] = 1;
  return `${formatIp(bytes)}/64`;
}

/** Writes JSON or text readable by its owner only, whole or not at all; `exclusive` fails if the file exists. */
function writeSecret(path: string, content: unknown, exclusive = false): void {
  const text = typeof content === "string" ? content : `${JSON.stringify(content, null, 2)}\n`;
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    writeFileSync(temporary, text, { mode: 0o600, flag: "wx" });
  } catch (error) {
    throw new StoreError(`${path}: cannot write: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  try {
    if (exclusive) {
      try {
        linkSync(temporary, path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "EEXIST") throw new StoreError(`${path} already exists`);
        throw error;
      }
    } else {
      renameSync(temporary, path);
    }
  } finally {
    rmSync(temporary, { force: true });
  }
}
