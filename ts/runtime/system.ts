// What the library reads from the machine besides a UDP socket and the clock: the engine's
// wasm file, this machine's interface addresses, and the system's name resolver. It goes
// through node:* modules, which Node, Deno and Bun all implement; the library outside runtime/
// (and outside splice, the Node-shaped tunnel sockets and the command line) imports none, so
// that a port to another host replaces runtime/ and nothing else (scripts/check-imports.mjs).

import { lookup } from "node:dns/promises";
import { readFileSync } from "node:fs";
import os from "node:os";

/** The engine's compiled WebAssembly, as bytes. The path works from ts/runtime/ and dist/runtime/. */
export function engineWasm(): Uint8Array<ArrayBuffer> {
  return readFileSync(new URL("../../dist/wg_netstack.wasm", import.meta.url));
}

/** An address of one of this machine's network interfaces. */
export interface InterfaceAddress {
  address: string;
  family: 4 | 6;
  /** Loopback: not reachable from another machine. */
  internal: boolean;
}

/** The addresses of this machine's network interfaces, in the system's order. */
export function interfaceAddresses(): InterfaceAddress[] {
  return Object.values(os.networkInterfaces())
    .flat()
    .filter((info) => info !== undefined)
    .map((info) => ({ address: info.address, family: info.family === "IPv4" ? 4 : 6, internal: info.internal }));
}

/** The system resolver's address for a host name (`getaddrinfo`: the hosts file, then DNS). */
export async function lookupHost(hostname: string): Promise<string> {
  return (await lookup(hostname)).address;
}
