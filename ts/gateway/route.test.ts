import { describe, expect, it } from "vitest";
import { parseIp } from "../ip.js";
import { isHostLocal, isLinkLocal, router } from "./route.js";

describe("router", () => {
  const dnsUpstream = { host: "192.0.2.53", port: 53 };
  const route = router({ ownHosts: ["10.77.0.1", "fd12:3456:789a::1"], dnsUpstream, allowLoopback: false, allowLinkLocal: false });
  const at = (host: string, port = 80) => route({ host, port });

  it("sends DNS to the gateway's addresses upstream and refuses their other ports", () => {
    expect(at("10.77.0.1", 53)).toEqual({ to: dnsUpstream });
    expect(at("fd12:3456:789a::1", 53)).toEqual({ to: dnsUpstream });
    expect(at("10.77.0.1", 22)).toMatchObject({ end: "refused" });
  });

  it("denies the host's loopback, in every spelling, and lets the LAN and the rest through", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "0.0.0.0", "::1", "::", "::ffff:127.0.0.1", "::ffff:0.0.0.0"]) {
      expect(at(host)).toEqual({ end: "denied", why: expect.stringContaining("--allow-loopback") });
    }
    for (const host of ["192.168.1.10", "10.201.3.2", "::2", "2001:db8::1", "::ffff:192.0.2.1", "128.0.0.1", "169.253.0.1", "fec0::1"]) {
      expect(at(host)).toEqual({ to: { host, port: 80 } });
    }
  });

  it("denies link-local addresses, where a cloud VM's metadata service answers", () => {
    for (const host of ["169.254.169.254", "169.254.0.1", "fe80::1", "febf::1", "::ffff:169.254.169.254"]) {
      expect(at(host)).toEqual({ end: "denied", why: expect.stringContaining("--allow-link-local") });
    }
    const open = router({ ownHosts: ["10.77.0.1"], dnsUpstream, allowLoopback: false, allowLinkLocal: true });
    expect(open({ host: "169.254.169.254", port: 80 })).toEqual({ to: { host: "169.254.169.254", port: 80 } });
  });

  it("denies the rest of the tunnel's subnets: another peer's address is not out on the host's network", () => {
    const tunnel = router({ ownHosts: ["10.77.0.1", "fd12:3456:789a::1"], subnets: ["10.77.0.1/24", "fd12:3456:789a::1/64"], dnsUpstream, allowLoopback: true, allowLinkLocal: true });
    for (const host of ["10.77.0.2", "10.77.0.254", "10.77.0.0", "fd12:3456:789a::2", "fd12:3456:789a::ffff:1", "::ffff:10.77.0.3"]) {
      expect(tunnel({ host, port: 80 })).toEqual({ end: "denied", why: expect.stringContaining("tunnel") });
    }
    expect(tunnel({ host: "10.77.0.1", port: 53 })).toEqual({ to: dnsUpstream }); // the gateway itself answers as before
    for (const host of ["10.77.1.2", "10.78.0.2", "fd12:3456:789b::2"]) expect(tunnel({ host, port: 80 })).toEqual({ to: { host, port: 80 } });
  });

  it("denies multicast and broadcast, which routers do not pass on: a phone's mDNS and SSDP stay off the host's LAN", () => {
    const open = router({ ownHosts: ["10.77.0.1"], dnsUpstream, allowLoopback: true, allowLinkLocal: true });
    for (const host of ["224.0.0.251", "239.255.255.250", "255.255.255.255", "ff02::fb", "ff05::c", "::ffff:224.0.0.251"]) {
      expect(open({ host, port: 5353 })).toEqual({ end: "denied", why: expect.stringContaining("multicast") });
    }
    for (const host of ["223.255.255.254", "240.0.0.1", "fe00::1"]) expect(open({ host, port: 5353 })).toEqual({ to: { host, port: 5353 } });
  });

  it("lets loopback through with allowLoopback", () => {
    const open = router({ ownHosts: ["10.77.0.1"], dnsUpstream, allowLoopback: true, allowLinkLocal: false });
    expect(open({ host: "127.0.0.1", port: 8080 })).toEqual({ to: { host: "127.0.0.1", port: 8080 } });
    expect(open({ host: "10.77.0.1", port: 8080 })).toMatchObject({ end: "refused" }); // still only DNS there
  });
});

describe("isHostLocal", () => {
  it("knows loopback and unspecified addresses", () => {
    const local = (text: string) => isHostLocal(parseIp(text)!);
    expect([local("127.255.255.255"), local("0.1.2.3"), local("::ffff:127.0.0.2")]).toEqual([true, true, true]);
    expect([local("126.0.0.1"), local("::ffff:10.0.0.1"), local("::1:0"), local("1::1")]).toEqual([false, false, false, false]);
  });
});

describe("isLinkLocal", () => {
  it("knows 169.254.0.0/16 and fe80::/10", () => {
    const linkLocal = (text: string) => isLinkLocal(parseIp(text)!);
    expect([linkLocal("169.254.255.255"), linkLocal("fe80::"), linkLocal("::ffff:169.254.1.1")]).toEqual([true, true, true]);
    expect([linkLocal("169.255.0.1"), linkLocal("fec0::1"), linkLocal("fe7f::1"), linkLocal("::ffff:10.0.0.1")]).toEqual([false, false, false, false]);
  });
});
