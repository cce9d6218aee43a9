/* cluster/lost_log_watch: when a leader decides a member lost its log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cluster/lost_log_watch.h"

enum { TERM = 7, WIPED = 11, HEALTHY = 12, MATCH = 42 };

/* Answers rejected or accepted alike: what CI met was two rejections, then
 * empty heartbeats the node accepted (last index 1), the engine probing it
 * with its next index below the match index it keeps. */
static void test_answers_below_the_match_index_act_on_the_third(void** state) {
    (void)state;
    struct rampart_lost_log_watch w = {0};
    assert_false(rampart_lost_log_observe(&w, TERM, WIPED, 1, MATCH));
    assert_false(rampart_lost_log_observe(&w, TERM, WIPED, 1, MATCH));
    assert_true(rampart_lost_log_observe(&w, TERM, WIPED, 1, MATCH));
}

static void test_an_answer_at_the_match_index_starts_the_count_again(void** state) {
    (void)state;
    struct rampart_lost_log_watch w = {0};
    assert_false(rampart_lost_log_observe(&w, TERM, WIPED, 1, MATCH));
    assert_false(rampart_lost_log_observe(&w, TERM, WIPED, 1, MATCH));
    assert_false(rampart_lost_log_observe(&w, TERM, WIPED, MATCH, MATCH));
    assert_false(rampart_lost_log_observe(&w, TERM, WIPED, 1, MATCH));
    assert_false(rampart_lost_log_observe(&w, TERM, WIPED, 1, MATCH));
    assert_true(rampart_lost_log_observe(&w, TERM, WIPED, 1, MATCH));
}

/* Healthy members answer between the wiped one's answers: they neither act
 * nor reset its count. */
static void test_other_members_in_step_do_not_interfere(void** state) {
    (void)state;
    struct rampart_lost_log_watch w = {0};
    for (int i = 0; i < 2; i++) {
        assert_false(rampart_lost_log_observe(&w, TERM, WIPED, 1, MATCH));
        assert_false(rampart_lost_log_observe(&w, TERM, HEALTHY, MATCH + 5, MATCH + 5));
    }
    assert_true(rampart_lost_log_observe(&w, TERM, WIPED, 1, MATCH));
}

/* Below-answers alternating between two members are not "in a row". */
static void test_alternating_members_below_never_act(void** state) {
    (void)state;
    struct rampart_lost_log_watch w = {0};
    for (int i = 0; i < 10; i++) {
        assert_false(rampart_lost_log_observe(&w, TERM, WIPED, 1, MATCH));
        assert_false(rampart_lost_log_observe(&w, TERM, HEALTHY, 1, MATCH));
    }
}

static void test_once_per_term(void** state) {
    (void)state;
    struct rampart_lost_log_watch w = {0};
    for (int i = 0; i < 2; i++) assert_false(rampart_lost_log_observe(&w, TERM, WIPED, 1, MATCH));
    assert_true(rampart_lost_log_observe(&w, TERM, WIPED, 1, MATCH));
    for (int i = 0; i < 9; i++) assert_false(rampart_lost_log_observe(&w, TERM, WIPED, 1, MATCH));
    for (int i = 0; i < 2; i++) assert_false(rampart_lost_log_observe(&w, TERM + 1, WIPED, 1, MATCH));
    assert_true(rampart_lost_log_observe(&w, TERM + 1, WIPED, 1, MATCH));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers_below_the_match_index_act_on_the_third),
        cmocka_unit_test(test_an_answer_at_the_match_index_starts_the_count_again),
        cmocka_unit_test(test_other_members_in_step_do_not_interfere),
        cmocka_unit_test(test_alternating_members_below_never_act),
        cmocka_unit_test(test_once_per_term),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
