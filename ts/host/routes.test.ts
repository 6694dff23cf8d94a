// The host's copy of the routes must answer as the engine's table does: checked by rule,
// then against the engine itself over random allows and removals (the engine's connect
// answers NO_ROUTE exactly when its table holds no prefix for the address).

import { describe, expect, it } from "vitest";
import { parseCidr, type Cidr } from "../ip.js";
import { Engine, EngineError } from "../wasm/engine.js";
import { ERROR, OPTIONS } from "../wasm/abi.js";
import { Routes } from "./routes.js";

const cidr = (text: string): Cidr => parseCidr(text)!;

describe("Routes", () => {
  it("keys a prefix by its network, gives it to the last peer allowed it, and forgets it with that peer", () => {
    const routes = new Routes();
    expect(routes.reaches("10.0.0.5")).toBe(false);
    routes.allow(1, cidr("10.0.0.77/24")); // host bits ignored, as wg does
    expect([routes.reaches("10.0.0.5"), routes.reaches("10.0.1.5"), routes.reaches("fd00::5")]).toEqual([true, false, false]);
    routes.allow(2, cidr("10.0.0.0/24")); // taken over by peer 2
    routes.removePeer(1);
    expect(routes.reaches("10.0.0.5")).toBe(true);
    routes.removePeer(2);
    expect(routes.reaches("10.0.0.5")).toBe(false);
    routes.allow(3, cidr("::/0"));
    expect([routes.reaches("2001:db8::1"), routes.reaches("10.0.0.5"), routes.reaches("not an address")]).toEqual([true, false, false]);
  });

  it("answers as the engine's table does over random allows and removals", () => {
    const engine = new Engine();
    const limits = Object.fromEntries(Object.entries(OPTIONS).map(([name, o]) => [name, o.default]));
    engine.start({ nowMs: 1, privateKey: new Uint8Array(32).fill(7), mtu: 1420, tcpReceiveBuffer: 65536, tcpSendBuffer: 65536, acceptTcp: true, limits: limits as never });
    const routes = new Routes();
    // A small LCG (its high bits: the low ones repeat quickly): the same run every time.
    let seed = 17;
    const random = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0), Math.floor((seed / 2 ** 32) * n));
    const v4 = () => `10.${random(4)}.${random(4)}.${random(8)}`;
    const v6 = () => `fd00::${random(2)}:${random(4).toString(16)}`;
    const keys: Uint8Array[] = [];
    let reached = 0;
    let probes = 0;
    for (let step = 0; step < 400; step++) {
      const choice = random(10);
      if (choice === 0 || keys.length === 0) {
        const key = new Uint8Array(32).fill(1 + keys.length);
        const id = engine.addPeer(key, undefined, 0, undefined);
        keys[id] = key;
      } else if (choice === 1) {
        const id = random(keys.length);
        if (!keys[id]) continue;
        expect(engine.removePeer(keys[id]!)).toBe(id);
        routes.removePeer(id);
        delete keys[id];
      } else if (choice < 5) {
        const ids = keys.flatMap((key, id) => (key ? [id] : []));
        if (ids.length === 0) continue;
        const id = ids[random(ids.length)]!;
        const prefix = random(3) === 0 ? cidr(`${v6()}/${100 + random(29)}`) : cidr(`${v4()}/${14 + random(19)}`);
        engine.allow(id, prefix, prefix.prefix);
        routes.allow(id, prefix);
      } else {
        const host = random(3) === 0 ? v6() : v4();
        const local = host.includes(":") ? "fd00::ffff" : "10.255.0.1";
        let engineReaches = true;
        try {
          engine.tcpConnect(step, { host: local, port: 0 }, { host, port: 80 });
        } catch (error) {
          if (!(error instanceof EngineError) || error.code !== ERROR.NO_ROUTE) throw error;
          engineReaches = false;
        }
        expect({ host, reaches: routes.reaches(host) }).toEqual({ host, reaches: engineReaches });
        reached += engineReaches ? 1 : 0;
        probes++;
      }
    }
    // Both answers came up often, or the comparison proved little.
    expect(reached).toBeGreaterThan(20);
    expect(probes - reached).toBeGreaterThan(20);
  });
});
