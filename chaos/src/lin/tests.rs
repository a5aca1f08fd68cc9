use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

type RegOp = Operation<RegisterInput, RegisterOutput>;
type MemOp = Operation<MembershipInput, MembershipOutput>;

const BUDGET: usize = 1_000_000;

fn write(id: u64, call: u64, ret: u64, v: u64) -> RegOp {
    Operation { id, call, ret: Some(ret), input: RegisterInput::Write(v), output: Some(RegisterOutput::Written) }
}

fn write_unknown(id: u64, call: u64, v: u64) -> RegOp {
    Operation { id, call, ret: None, input: RegisterInput::Write(v), output: None }
}

fn read(id: u64, call: u64, ret: u64, v: Option<u64>) -> RegOp {
    Operation { id, call, ret: Some(ret), input: RegisterInput::Read, output: Some(RegisterOutput::Value(v)) }
}

fn mem(id: u64, call: u64, ret: Option<u64>, input: MembershipInput, output: Option<MembershipOutput>) -> MemOp {
    Operation { id, call, ret, input, output }
}

fn is_linearizable(v: &Verdict) -> bool {
    matches!(v, Verdict::Linearizable)
}

#[test]
fn sequential_register_history_is_linearizable() {
    let h =
        vec![read(0, 0, 1, None), write(1, 2, 3, 7), read(2, 4, 5, Some(7)), write(3, 6, 7, 9), read(4, 8, 9, Some(9))];
    assert_eq!(check(&Register, &h, BUDGET), Verdict::Linearizable);
}

#[test]
fn a_stale_read_after_a_completed_write_is_caught() {
    // write 1, then write 2 completes, then a read still sees 1: a follower answering
    // from its old state.
    let h = vec![write(0, 0, 10, 1), write(1, 20, 30, 2), read(2, 40, 50, Some(1))];
    match check(&Register, &h, BUDGET) {
        Verdict::NotLinearizable { blocked, .. } => assert_eq!(blocked, 2),
        other => panic!("stale read not caught: {other:?}"),
    }
}

#[test]
fn reads_concurrent_with_a_write_may_see_either_value() {
    let h = vec![write(0, 0, 10, 1), write(1, 20, 100, 2), read(2, 30, 40, Some(1)), read(3, 50, 60, Some(2))];
    assert!(is_linearizable(&check(&Register, &h, BUDGET)));
}

#[test]
fn a_value_cannot_revert_once_a_later_read_saw_the_new_one() {
    let h = vec![
        write(0, 0, 10, 1),
        write(1, 20, 100, 2),
        read(2, 30, 40, Some(2)),
        // After a read that returned 2 completed, 1 can no longer be read.
        read(3, 50, 60, Some(1)),
    ];
    assert!(matches!(check(&Register, &h, BUDGET), Verdict::NotLinearizable { .. }));
}

#[test]
fn an_acknowledged_write_that_is_lost_is_caught() {
    let h = vec![write(0, 0, 10, 5), read(1, 20, 30, None)];
    assert!(matches!(check(&Register, &h, BUDGET), Verdict::NotLinearizable { .. }));
}

#[test]
fn an_unknown_write_may_take_effect_late_or_never() {
    let late = vec![write_unknown(0, 0, 5), read(1, 10, 20, None), read(2, 30, 40, Some(5))];
    assert!(is_linearizable(&check(&Register, &late, BUDGET)));
    let never = vec![write_unknown(0, 0, 5), read(1, 10, 20, None), read(2, 30, 40, None)];
    assert!(is_linearizable(&check(&Register, &never, BUDGET)));
    // ... but not before it was invoked.
    let early = vec![read(0, 0, 10, Some(5)), write_unknown(1, 20, 5)];
    assert!(matches!(check(&Register, &early, BUDGET), Verdict::NotLinearizable { .. }));
}

#[test]
fn a_duplicate_create_is_caught() {
    use MembershipInput::*;
    use MembershipOutput as O;
    let h = vec![mem(0, 0, Some(10), Create, Some(O::Ok)), mem(1, 20, Some(30), Create, Some(O::Ok))];
    assert!(matches!(check(&Membership, &h, BUDGET), Verdict::NotLinearizable { .. }));
}

#[test]
fn a_lost_create_is_caught_and_an_unknown_one_is_not_required() {
    use MembershipInput::*;
    use MembershipOutput as O;
    let lost = vec![mem(0, 0, Some(10), Create, Some(O::Ok)), mem(1, 20, Some(30), Get, Some(O::NotFound))];
    assert!(matches!(check(&Membership, &lost, BUDGET), Verdict::NotLinearizable { .. }));
    let unknown = vec![mem(0, 0, None, Create, None), mem(1, 20, Some(30), Get, Some(O::NotFound))];
    assert!(is_linearizable(&check(&Membership, &unknown, BUDGET)));
}

#[test]
fn create_delete_get_interleavings() {
    use MembershipInput::*;
    use MembershipOutput as O;
    let h = vec![
        mem(0, 0, Some(10), Create, Some(O::Ok)),
        mem(1, 15, Some(40), Delete, Some(O::Ok)),
        mem(2, 20, Some(25), Get, Some(O::Found)),
        mem(3, 30, Some(35), Get, Some(O::NotFound)),
        mem(4, 50, Some(60), Delete, Some(O::NotFound)),
        mem(5, 55, Some(70), Create, Some(O::Ok)),
        mem(6, 56, Some(57), Get, Some(O::NotFound)),
    ];
    assert!(is_linearizable(&check(&Membership, &h, BUDGET)));
    // A get that saw it gone, then one that sees it again, with no create between.
    let resurrected = vec![
        mem(0, 0, Some(10), Create, Some(O::Ok)),
        mem(1, 15, Some(20), Delete, Some(O::Ok)),
        mem(2, 30, Some(35), Get, Some(O::Found)),
    ];
    assert!(matches!(check(&Membership, &resurrected, BUDGET), Verdict::NotLinearizable { .. }));
}

/// A register simulated with real concurrency: every operation takes effect at one
/// instant inside its interval, so the history is linearizable by construction; moving
/// one read's answer to a value never written must make it not linearizable.
#[test]
fn generated_histories_are_accepted_and_a_corrupted_read_is_caught() {
    let mut rng = StdRng::seed_from_u64(0x11ea);
    for round in 0..200 {
        let mut value: Option<u64> = None;
        let mut ops: Vec<RegOp> = Vec::new();
        // Effect points are strictly increasing; each interval is widened around its
        // point so that operations overlap.
        let mut t = 100u64;
        for id in 0..rng.random_range(5..40) {
            t += rng.random_range(1..20);
            let call = t - rng.random_range(0..50).min(t);
            let ret = t + rng.random_range(0..50);
            if rng.random_bool(0.4) {
                let v = round * 1000 + id;
                value = Some(v);
                if rng.random_bool(0.2) {
                    ops.push(write_unknown(id, call, v));
                } else {
                    ops.push(write(id, call, ret, v));
                }
            } else {
                ops.push(read(id, call, ret, value));
            }
        }
        assert_eq!(check(&Register, &ops, BUDGET), Verdict::Linearizable, "round {round}: {ops:?}");
        if let Some(i) = ops.iter().position(|o| o.input == RegisterInput::Read) {
            ops[i].output = Some(RegisterOutput::Value(Some(u64::MAX)));
            assert!(matches!(check(&Register, &ops, BUDGET), Verdict::NotLinearizable { .. }), "round {round}");
        }
    }
}

#[test]
fn the_search_gives_up_at_its_budget() {
    let h: Vec<RegOp> = (0..30).map(|i| write(i, 0, 1000, i)).chain([read(99, 2000, 2001, Some(1_000))]).collect();
    assert_eq!(check(&Register, &h, 50), Verdict::GaveUp { budget: 50 });
}
