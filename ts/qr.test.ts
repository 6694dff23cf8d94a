import QRCode from "qrcode";
import { describe, expect, it } from "vitest";
import { clientConfig } from "./client-config.js";
import { encodeKey } from "./config.js";
import { qrCode } from "./qr.js";

// No QR decoder offline: instead, read the modules back out of the SVG and the
// terminal text and compare them with qrcode's own encoding of the same text.

const key = (fill: number) => encodeKey(new Uint8Array(32).fill(fill));
const CONFIG = clientConfig({
  privateKey: key(1),
  address: ["10.0.0.2/32", "fd00::2/128"],
  serverPublicKey: key(2),
  presharedKey: key(3),
  endpoint: "vpn.example.com:51820",
  dns: ["10.0.0.1", "fd00::1"],
  mtu: 1420,
  persistentKeepalive: 25,
});
const SHORT = "[Interface]\n";
const MARGIN = 4; // qrcode's default quiet zone, in modules

/** The module matrix qrcode makes for `text` at the level qrCode uses. */
const expected = (text: string) => QRCode.create(text, { errorCorrectionLevel: "L" }).modules;

/** Reads the dark modules back from the SVG path ("M x y" starts a row, "m dx 0" skips, "h n" draws n). */
function svgModules(svg: string): { size: number; data: number[] } {
  const size = Number(/viewBox="0 0 (\d+) \1"/.exec(svg)![1]) - 2 * MARGIN;
  const data = new Array<number>(size * size).fill(0);
  let x = 0;
  let y = 0;
  for (const [, command, a, b] of svg.match(/ d="(M[^"]*)"\/><\/svg>/)![1]!.matchAll(/([Mmh])([\d.]+)(?: ([\d.]+))?/g)) {
    if (command === "M") [x, y] = [Number(a) - MARGIN, Number(b) - 0.5 - MARGIN];
    else if (command === "m") x += Number(a);
    else for (let end = x + Number(a); x < end; x++) data[y * size + x] = 1;
  }
  return { size, data };
}

/** Reads the modules back from the terminal text: each character is two modules, top and bottom. */
function terminalModules(text: string): { size: number; data: number[] } {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ESC starts the terminal's colour codes, which this strips
  const lines = text.replace(/\x1b\[[0-9;]*m/g, "").split("\n").filter((line) => line.length > 0);
  const size = lines[0]!.length - 2; // one light column each side
  const data = new Array<number>(size * size).fill(0);
  // Line r holds module rows 2r-1 (top half) and 2r (bottom half); row -1 is the border.
  lines.forEach((line, r) => {
    for (let x = 0; x < size; x++) {
      const char = line[x + 1]!;
      const top = 2 * r - 1;
      if (top >= 0 && top < size && (char === "▀" || char === "█")) data[top * size + x] = 1;
      if (top + 1 < size && (char === "▄" || char === "█")) data[(top + 1) * size + x] = 1;
    }
  });
  return { size, data };
}

/** Width and height from a PNG's IHDR chunk, which must come first. */
function pngSize(png: Uint8Array): { width: number; height: number } {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  expect(new TextDecoder().decode(png.subarray(12, 16))).toBe("IHDR");
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

describe("qrCode", () => {
  it("fits a full WireGuard config in a code that is easy to scan", () => {
    expect(CONFIG.length).toBeGreaterThan(300);
    expect(expected(CONFIG).size).toBeLessThanOrEqual(69); // version 13 or less
  });

  it("makes an SVG document of the config", async () => {
    const svg = await qrCode(CONFIG, "svg");
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" [^>]*viewBox="0 0 \d+ \d+"/);
    expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
    const modules = expected(CONFIG);
    expect(svgModules(svg)).toEqual({ size: modules.size, data: [...modules.data] });
  });

  it("makes terminal text of the config", async () => {
    const text = await qrCode(CONFIG, "terminal");
    const modules = expected(CONFIG);
    const lines = text.split("\n").filter((line) => /[▀▄█]/.test(line));
    expect(lines.length).toBe((modules.size + 3) / 2); // half as many lines as modules, plus the border
    expect(text).toContain("\x1b[47m\x1b[30m"); // black on white whatever the terminal's colours
    expect(terminalModules(text)).toEqual({ size: modules.size, data: [...modules.data] });
  });

  it("makes a PNG of the config", async () => {
    const png = await qrCode(CONFIG, "png");
    expect(png).toBeInstanceOf(Uint8Array);
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const side = (expected(CONFIG).size + 2 * MARGIN) * 4; // 4 pixels per module
    expect(pngSize(png)).toEqual({ width: side, height: side });
    expect(side).toBeGreaterThan(100);
    expect(side).toBeLessThan(1000);
  });

  it("makes a larger code for a longer text", async () => {
    const viewBox = (svg: string) => Number(/viewBox="0 0 (\d+)/.exec(svg)![1]);
    expect(viewBox(await qrCode(SHORT, "svg"))).toBeLessThan(viewBox(await qrCode(CONFIG, "svg")));
    expect(pngSize(await qrCode(SHORT, "png")).width).toBeLessThan(pngSize(await qrCode(CONFIG, "png")).width);
    const lineCount = (text: string) => text.split("\n").length;
    expect(lineCount(await qrCode(SHORT, "terminal"))).toBeLessThan(lineCount(await qrCode(CONFIG, "terminal")));
    expect(terminalModules(await qrCode(SHORT, "terminal")).size).toBe(expected(SHORT).size);
  });

  it("rejects a text too long for any QR code and an unknown format", async () => {
    await expect(qrCode("x".repeat(3000), "svg")).rejects.toThrow(/too big/i);
    await expect(qrCode(CONFIG, "gif" as "svg")).rejects.toThrow(TypeError);
  });
});
