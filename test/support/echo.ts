// The two ends of an echo over a TcpConnection, for tests that move data through a pair of stacks.

import { Buffer } from "node:buffer";
import type { TcpConnection } from "../../ts/index.js";

/** Sends back everything the connection brings, then ends it. */
export async function echo(conn: TcpConnection): Promise<void> {
  for await (const chunk of conn) await conn.write(chunk);
  await conn.end();
}

/** Writes `data` and half-closes while reading everything back. */
export async function roundTrip(conn: TcpConnection, data: Uint8Array): Promise<Uint8Array> {
  const sending = conn.write(data).then(() => conn.end());
  const parts: Uint8Array[] = [];
  for await (const chunk of conn) parts.push(chunk);
  await sending;
  return Buffer.concat(parts);
}
