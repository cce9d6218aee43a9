"""The linearizability checker on histories whose answer is known by hand:
it must accept every linearizable one and reject every one that is not,
including the anomalies a broken cluster produces (a stale read from a
deposed leader, a lost acknowledged write, two leaders both taking a CAS)."""
import math
import random
import unittest

from linearizability import FAIL, OK, UNKNOWN, Op, check, check_register


def put(c, v, t0, t1, status=OK, key="k"):
    return Op(c, "put", key, t0, t1, status, value=v)


def get(c, out, t0, t1, status=OK, key="k"):
    return Op(c, "get", key, t0, t1, status, output=out)


def cas(c, exp, v, out, t0, t1, status=OK, key="k"):
    return Op(c, "cas", key, t0, t1, status, value=v, expected=exp, output=out)


class KnownGood(unittest.TestCase):
    def assertLinearizable(self, ops):
        r = check(ops)
        self.assertTrue(r.ok, r.explain)

    def test_empty_and_sequential(self):
        self.assertLinearizable([])
        self.assertLinearizable([get(1, None, 0, 1), put(1, "a", 2, 3), get(1, "a", 4, 5), put(2, "b", 6, 7),
                                 get(3, "b", 8, 9)])

    def test_concurrent_reads_may_see_either_side_of_a_write(self):
        # put(b) overlaps both reads: one sees a, the other b, in this order.
        self.assertLinearizable([put(1, "a", 0, 1), put(2, "b", 2, 10), get(3, "a", 3, 4), get(4, "b", 5, 6)])

    def test_overlapping_writes_in_either_order(self):
        self.assertLinearizable([put(1, "a", 0, 5), put(2, "b", 1, 6), get(3, "a", 7, 8)])
        self.assertLinearizable([put(1, "a", 0, 5), put(2, "b", 1, 6), get(3, "b", 7, 8)])

    def test_cas(self):
        self.assertLinearizable([put(1, "a", 0, 1), cas(2, "a", "b", True, 2, 3), cas(3, "a", "c", False, 4, 5),
                                 get(1, "b", 6, 7)])

    def test_concurrent_cas_one_wins(self):
        self.assertLinearizable([put(1, "a", 0, 1), cas(2, "a", "b", True, 2, 5), cas(3, "a", "c", False, 2, 5),
                                 get(1, "b", 6, 7)])

    def test_unknown_write_may_land_late_or_never(self):
        lost = put(1, "x", 0, 1, status=UNKNOWN)
        # Seen long after the client gave up on it ...
        self.assertLinearizable([put(2, "a", 0, 1), lost, get(3, "a", 2, 3), get(3, "x", 50, 51)])
        # ... or never.
        lost = put(1, "x", 0, 1, status=UNKNOWN)
        self.assertLinearizable([put(2, "a", 0, 1), lost, get(3, "a", 2, 3), get(3, "a", 50, 51)])

    def test_failed_write_is_ignored(self):
        self.assertLinearizable([put(1, "a", 0, 1), put(2, "b", 2, 3, status=FAIL), get(3, "a", 4, 5)])

    def test_unknown_cas_either_way(self):
        self.assertLinearizable([put(1, "a", 0, 1), cas(2, "a", "b", None, 2, 3, status=UNKNOWN),
                                 get(1, "b", 9, 10)])
        self.assertLinearizable([put(1, "a", 0, 1), cas(2, "a", "b", None, 2, 3, status=UNKNOWN),
                                 get(1, "a", 9, 10)])

    def test_keys_are_independent(self):
        self.assertLinearizable([put(1, "a", 0, 1, key="x"), put(1, "b", 0, 1, key="y"), get(2, "a", 2, 3, key="x"),
                                 get(2, "b", 2, 3, key="y")])

    def test_a_long_random_sequential_register_run(self):
        rnd = random.Random(7)
        ops, value, t = [], None, 0.0
        for i in range(400):
            c = rnd.randrange(8)
            if rnd.random() < 0.5:
                value = f"v{i}"
                ops.append(put(c, value, t, t + 0.5))
            else:
                ops.append(get(c, value, t, t + 0.5))
            t += 1
        self.assertLinearizable(ops)

    def test_many_concurrent_clients_stay_fast(self):
        # 8 clients, each op overlapping its neighbours: the memo keeps this small.
        rnd = random.Random(3)
        ops, value = [], None
        for i in range(300):
            t = i * 1.0
            if i % 3:
                value = f"v{i}"
                ops.append(put(i % 8, value, t, t + 0.9 + rnd.random()))
            else:
                ops.append(get(i % 8, value, t + 0.5, t + 0.95))
        self.assertLinearizable(ops)


class KnownBad(unittest.TestCase):
    def assertNotLinearizable(self, ops):
        r = check(ops)
        self.assertFalse(r.ok)
        self.assertIn("no linearization", r.explain)
        return r

    def test_read_of_a_value_never_written(self):
        self.assertNotLinearizable([put(1, "a", 0, 1), get(2, "z", 2, 3)])

    def test_stale_read_after_a_completed_write(self):
        # What a deposed leader serving reads from its own state would give.
        r = self.assertNotLinearizable([put(1, "a", 0, 1), put(1, "b", 2, 3), get(2, "a", 4, 5)])
        self.assertIn("get()", r.explain)

    def test_lost_acknowledged_write(self):
        self.assertNotLinearizable([put(1, "a", 0, 1), get(2, "a", 2, 3), get(3, None, 4, 5)])

    def test_read_goes_back_in_time(self):
        self.assertNotLinearizable([put(1, "a", 0, 1), put(2, "b", 2, 10), get(3, "b", 3, 4), get(4, "a", 5, 6)])

    def test_two_winners_of_one_cas(self):
        # Two leaders at once would both let the CAS through.
        self.assertNotLinearizable([put(1, "a", 0, 1), cas(2, "a", "b", True, 2, 5), cas(3, "a", "c", True, 2, 5)])

    def test_cas_that_failed_while_it_should_have_won(self):
        self.assertNotLinearizable([put(1, "a", 0, 1), cas(2, "a", "b", False, 2, 3)])

    def test_unknown_write_cannot_act_before_it_was_sent(self):
        self.assertNotLinearizable([get(1, "x", 0, 1), put(2, "x", 2, 3, status=UNKNOWN)])

    def test_bad_key_is_named_among_good_ones(self):
        r = self.assertNotLinearizable([put(1, "a", 0, 1, key="good"), put(1, "a", 0, 1, key="bad"),
                                        get(2, "a", 2, 3, key="good"), get(2, "q", 2, 3, key="bad")])
        self.assertEqual(r.bad_key, "bad")

    def test_invalid_input_is_refused(self):
        with self.assertRaises(ValueError):
            check([Op(1, "append", "k", 0, 1, OK, value="a")])
        with self.assertRaises(ValueError):
            check([put(1, "a", 5, 1)])

    def test_unknown_outcomes_are_open_ended(self):
        op = put(1, "a", 0, 1, status=UNKNOWN)
        ok, order = check_register([op, get(2, "a", 5, 6)])
        self.assertTrue(ok)
        self.assertEqual(op.complete, math.inf)
        self.assertEqual([o.kind for o in order], ["put", "get"])


if __name__ == "__main__":
    unittest.main()
