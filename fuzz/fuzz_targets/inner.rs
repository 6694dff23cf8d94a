//! Arbitrary inner packets from a peer that has done its handshake: what an
//! authenticated client can make the server parse, route and keep TCP state for.
//! One server and client per process (a handshake per input would cost more than the
//! input); see `World::run`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use wg_netstack_fuzz::World;

thread_local! {
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

fuzz_target!(|input: &[u8]| {
    WORLD.with(|world| world.borrow_mut().get_or_insert_with(World::new).run(input));
});
