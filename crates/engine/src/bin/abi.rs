//! Prints ts/wasm/abi.ts (see `wg_netstack_engine::abi`). `node build.mjs` runs it.

fn main() {
    print!("{}", wg_netstack_engine::abi::typescript());
}
