// WireGuard keys, in the base64 form `wg genkey` / `wg pubkey` / `wg genpsk` use.

import { decodeKey, encodeKey } from "./config.js";
import { Engine } from "./wasm/engine.js";

let keyEngine: Engine | undefined;

/** A new private key, clamped as `wg genkey` does. */
export function genkey(): string {
  const key = crypto.getRandomValues(new Uint8Array(32));
  key[0]! &= 248;
  key[31]! &= 127;
  key[31]! |= 64;
  return encodeKey(key);
}

/** The public key of a private key, as `wg pubkey` prints it. */
export function pubkey(privateKey: string): string {
  keyEngine ??= new Engine();
  return encodeKey(keyEngine.publicKey(decodeKey(privateKey, "privateKey")));
}

/** A new preshared key, as `wg genpsk` prints it. */
export function genpsk(): string {
  return encodeKey(crypto.getRandomValues(new Uint8Array(32)));
}
