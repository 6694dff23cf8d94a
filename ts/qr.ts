// QR codes of a client config, for the WireGuard phone apps' "scan from QR code".

// qrcode is loaded on first use, so importing wg-netstack does not pay for it.
// It is CommonJS: its default export (module.exports) works in Node, Deno and Bun.
const loadQrcode = async () => (await import("qrcode")).default;

// Low error correction gives the fewest, largest modules: a screen is not a scuffed
// label, and a ~300-character config stays a version 10-11 code that phones read at once.
const ERROR_CORRECTION = "L";

/**
 * Renders `text` (usually a {@link clientConfig} result) as a QR code:
 * - `"svg"`: a standalone `<svg>` document that scales to any size;
 * - `"terminal"`: half-block characters with ANSI colours (dark on light whatever the
 *   terminal's theme), one character per module across and two per line down;
 * - `"png"`: the image file's bytes (4 pixels per module, 4-module white border).
 *
 * Rejects when the text does not fit in a QR code (about 2900 bytes).
 *
 * @example console.log(await qrCode(clientConfig(options), "terminal"));
 */
export function qrCode(text: string, format: "svg" | "terminal"): Promise<string>;
export function qrCode(text: string, format: "png"): Promise<Uint8Array>;
export async function qrCode(text: string, format: "svg" | "terminal" | "png"): Promise<string | Uint8Array> {
  const errorCorrectionLevel = ERROR_CORRECTION;
  if (format !== "svg" && format !== "terminal" && format !== "png") {
    throw new TypeError(`format must be "svg", "terminal" or "png", got ${JSON.stringify(format)}`);
  }
  const QRCode = await loadQrcode();
  switch (format) {
    case "svg":
      return QRCode.toString(text, { type: "svg", errorCorrectionLevel });
    case "terminal":
      // "small" halves the height; without it each module is two coloured spaces.
      return QRCode.toString(text, { type: "terminal", small: true, errorCorrectionLevel });
    case "png": {
      const png = await QRCode.toBuffer(text, { type: "png", errorCorrectionLevel });
      return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
    }
  }
}
