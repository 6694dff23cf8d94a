//! Prints ts/core/abi.ts (see `wg_netstack_core::abi`). `node build.mjs` runs it.

fn main() {
    print!("{}", wg_netstack_core::abi::typescript());
}
