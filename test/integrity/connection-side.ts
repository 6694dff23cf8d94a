// What the integrity tests share beside roles.mjs: the scenario and report types, and a
// role played over one of our own TcpConnections.

import { setTimeout as sleep } from "node:timers/promises";
import type { TcpConnection } from "../../ts/index.js";
import { type play, Side } from "./roles.mjs";

export type Scenario = { client(side: Side): Promise<unknown>; upstream(side: Side): Promise<unknown>; slow?: string; end: string };
export type Report = Awaited<ReturnType<typeof play>>;


/** A Side over a TcpConnection: reads chunk by chunk, pausing when the role is a slow reader. */
export function connectionSide(conn: TcpConnection, options: ConstructorParameters<typeof Side>[1]): Side {
  let paused = Promise.resolve();
  const side = new Side(
    {
      write: (bytes: Uint8Array) => conn.write(bytes),
      end: () => void conn.end().catch(() => {}), // a failed end shows as the far side's ending
      reset: () => conn.abort(),
      pause: (ms: number) => void (paused = sleep(ms)),
    },
    options,
  );
  void (async () => {
    try {
      for (;;) {
        await paused;
        const chunk = await conn.read();
        if (chunk.length === 0) return side.onEnd("eof");
        side.onData(chunk);
      }
    } catch (error) {
      side.onEnd((error as NodeJS.ErrnoException).code ?? String(error));
    }
  })();
  return side;
}
