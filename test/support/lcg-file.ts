// The file the interop tests' hosts serve: bytes from a fixed LCG, so a test knows what a
// download must hash to without storing the file. One source, run both in the test and in
// the `node -e` servers inside the namespaces.

import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";

/** JavaScript that declares `file`, a Buffer of `size` bytes from the LCG (for `node -e` scripts). */
export function lcgFileSource(size: number): string {
  return `const file = Buffer.alloc(${size}); for (let i = 0, x = 1; i < ${size}; i++) { x = (x * 1103515245 + 12345) >>> 0; file[i] = x >>> 24; }`;
}

/** The file of `size` bytes, made here. */
export function lcgFile(size: number): Buffer {
  return new Function("Buffer", `${lcgFileSource(size)}; return file;`)(Buffer);
}

/** SHA-256 of the file of `size` bytes, in hex. */
export function lcgFileHash(size: number): string {
  return createHash("sha256").update(lcgFile(size)).digest("hex");
}
