//! SLOW: MODP groups 15-18 negotiated end to end (ESN-05, issue 5 item 4), with
//! the default strength-sized exponents. Marked by the `slow_` prefix
//! (`cargo test -p esession --test two_party -- --skip slow_` leaves it out);
//! `cargo test --workspace`, and so `.ci/run`, runs it.

use crate::harness::{ALICE, BOB, Pair, Side, config};
use esession::Config;
use esession_crypto::ModpGroup;

fn group_only(own_jid: &str, group: ModpGroup) -> Config {
    Config {
        groups: vec![group],
        ..config(own_jid)
    }
}

#[test]
fn slow_groups_15_to_18_negotiate_and_carry_messages() {
    for (i, group) in [
        ModpGroup::Group15,
        ModpGroup::Group16,
        ModpGroup::Group17,
        ModpGroup::Group18,
    ]
    .into_iter()
    .enumerate()
    {
        let mut pair = Pair::with_configs(
            group_only(ALICE, group),
            group_only(BOB, group),
            9400 + 2 * i as u64,
        );
        let thread = pair.handshake();
        assert_eq!(pair.info(Side::Alice).group, group);
        assert_eq!(pair.info(Side::Bob).group, group);
        pair.chat(Side::Alice, &thread, "hello over a big group");
        pair.chat(Side::Bob, &thread, "and back");
        assert_eq!(pair.bob.bodies(), ["hello over a big group"]);
        assert_eq!(pair.alice.bodies(), ["and back"]);
    }
}
