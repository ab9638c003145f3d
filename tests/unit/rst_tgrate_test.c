/*  rst_tgrate_test — Telegram sending limits in simulated time.

    The bots node asks rst_tgrate_reserve before each Bot API call: 0 means
    "send now" (a token was taken from the bot's bucket and the chat's),
    anything else is how long to wait. Time is passed in, so these tests
    run 100 simulated seconds in microseconds and assert exact counts.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rst_tgrate.h"

#include <math.h>
#include <stdio.h>

#define BOT   INT64_C (123456)
#define CHAT  INT64_C (111)

//  The tour: a fresh chat takes a burst of 3, then 1 message a second; the
//  wait says exactly when the next one may go.
static void
test_chat_burst_then_rate (void **state)
{
    (void) state;
    rst_tgrate_t *rate = rst_tgrate_new (25, 25, 1, 3);
    assert_non_null (rate);
    double now = 1000.0;
    for (int i = 0; i < 3; i++)
        assert_true (rst_tgrate_reserve (rate, BOT, CHAT, now) == 0);
    double wait = rst_tgrate_reserve (rate, BOT, CHAT, now);
    assert_true (wait > 0.99 && wait <= 1.0);
    //  Refused attempts take nothing: asking again changes nothing.
    assert_true (rst_tgrate_reserve (rate, BOT, CHAT, now + 0.5) > 0.49);
    assert_true (rst_tgrate_reserve (rate, BOT, CHAT, now + 0.5) > 0.49);
    assert_true (rst_tgrate_reserve (rate, BOT, CHAT, now + wait) == 0);
    assert_true (rst_tgrate_reserve (rate, BOT, CHAT, now + wait) > 0.99);
    //  Another chat of the same bot is not held back.
    assert_true (rst_tgrate_reserve (rate, BOT, CHAT + 1, now) == 0);
    //  Nor is the same chat id under another bot (a different pair).
    assert_true (rst_tgrate_reserve (rate, BOT + 1, CHAT, now) == 0);
    assert_int_equal (rst_tgrate_size (rate), 5);   //  2 bots + 3 (bot, chat) pairs
    rst_tgrate_destroy (&rate);
    assert_null (rate);
    rst_tgrate_destroy (&rate);                     //  safe to repeat
}

//  100 s of attempts every 10 ms to one chat: the burst, then one a second.
static void
test_one_chat_over_100_seconds (void **state)
{
    (void) state;
    rst_tgrate_t *rate = rst_tgrate_new (25, 25, 1, 3);
    int sent = 0;
    for (int step = 0; step < 10000; step++) {        //  t = 0 .. 99.99 s
        if (rst_tgrate_reserve (rate, BOT, CHAT, step * 0.01) == 0)
            sent++;
    }
    //  3 at t = 0, then one each at t = 1 .. 99.
    assert_int_equal (sent, 3 + 99);

    //  A caller that sleeps exactly what it is told sends at the same pace.
    rst_tgrate_t *rate2 = rst_tgrate_new (25, 25, 1, 3);
    double now = 0;
    sent = 0;
    int asks = 0;
    while (now < 100.0) {
        double wait = rst_tgrate_reserve (rate2, BOT, CHAT, now);
        asks++;
        if (wait == 0)
            sent++;
        now += wait;
    }
    assert_true (sent >= 3 + 99 && sent <= 3 + 100);
    assert_true (asks <= 2 * sent + 2);             //  no spinning on tiny waits
    rst_tgrate_destroy (&rate2);
    rst_tgrate_destroy (&rate);
}

//  The bot's bucket caps the total across chats: 10 s of attempts to 1000
//  chats in turn (each chat's own limit never binds) let 25 + 25/s through.
static void
test_bot_bucket_caps_all_chats (void **state)
{
    (void) state;
    rst_tgrate_t *rate = rst_tgrate_new (25, 25, 1, 3);
    int sent = 0;
    for (int step = 0; step < 10000; step++) {        //  every ms for 10 s
        int64_t chat = -1000000 - (step % 1000);     //  group chats have negative ids
        if (rst_tgrate_reserve (rate, BOT, chat, step * 0.001) == 0)
            sent++;
    }
    assert_true (sent >= 25 + 249 && sent <= 25 + 250);
    //  A call about no chat (answerCallbackQuery) counts against the bot only.
    rst_tgrate_reserve (rate, BOT, 0, 10.0);        //  may get the token due at 10.0
    double wait = rst_tgrate_reserve (rate, BOT, 0, 10.0);
    assert_true (wait > 0 && wait <= 1.0 / 25 + 1e-9);
    assert_true (rst_tgrate_reserve (rate, BOT, 0, 10.0 + wait) == 0);
    //  Another bot has its own bucket.
    assert_true (rst_tgrate_reserve (rate, BOT + 7, -1000000, 10.0) == 0);
    rst_tgrate_destroy (&rate);
}

//  A 429 blocks the bot (every chat) until retry_after has passed; blocks
//  only grow.
static void
test_block_is_honoured (void **state)
{
    (void) state;
    rst_tgrate_t *rate = rst_tgrate_new (25, 25, 1, 3);
    assert_true (rst_tgrate_reserve (rate, BOT, CHAT, 10.0) == 0);
    rst_tgrate_block (rate, BOT, CHAT, 10.0 + 30);
    double wait = rst_tgrate_reserve (rate, BOT, CHAT, 10.0);
    assert_true (fabs (wait - 30) < 1e-9);
    //  Other chats of the bot, and calls about no chat, wait too.
    assert_true (fabs (rst_tgrate_reserve (rate, BOT, CHAT + 5, 20.0) - 20) < 1e-9);
    assert_true (fabs (rst_tgrate_reserve (rate, BOT, 0, 39.5) - 0.5) < 1e-9);
    //  Another bot is free.
    assert_true (rst_tgrate_reserve (rate, BOT + 1, CHAT, 20.0) == 0);
    //  A shorter block does not shorten it; a longer one extends it.
    rst_tgrate_block (rate, BOT, 0, 15.0);
    assert_true (rst_tgrate_reserve (rate, BOT, CHAT, 39.0) > 0);
    rst_tgrate_block (rate, BOT, 0, 50.0);
    assert_true (fabs (rst_tgrate_reserve (rate, BOT, CHAT + 5, 40.0) - 10) < 1e-9);
    assert_true (rst_tgrate_reserve (rate, BOT, CHAT, 50.0) == 0);
    assert_true (rst_tgrate_reserve (rate, BOT, CHAT + 5, 50.0) == 0);
    //  A non-finite time (a garbled retry_after) is ignored.
    rst_tgrate_block (rate, BOT, CHAT, INFINITY);
    rst_tgrate_block (rate, BOT, CHAT, NAN);
    assert_true (rst_tgrate_reserve (rate, BOT, CHAT, 60.0) == 0);
    //  A block on a bot never seen before holds too.
    rst_tgrate_block (rate, 999, 0, 70.0);
    assert_true (fabs (rst_tgrate_reserve (rate, 999, 5, 65.0) - 5) < 1e-9);
    assert_true (rst_tgrate_reserve (rate, 999, 5, 70.0) == 0);
    rst_tgrate_destroy (&rate);
}

//  forget_idle frees only states equal to new ones; answers do not change.
static void
test_forget_idle (void **state)
{
    (void) state;
    rst_tgrate_t *rate = rst_tgrate_new (25, 25, 1, 3);
    assert_int_equal (rst_tgrate_forget_idle (rate, 0.0, 60), 0);
    //  Three sends at t = 0 empty the chat's bucket.
    for (int i = 0; i < 3; i++)
        assert_true (rst_tgrate_reserve (rate, BOT, CHAT, 0.0) == 0);
    assert_int_equal (rst_tgrate_size (rate), 2);
    //  After 1 s the bot's bucket is full again and is forgotten even with
    //  idle_s 0; the chat's (1 of 3 tokens) is kept.
    assert_int_equal (rst_tgrate_forget_idle (rate, 1.0, 0), 1);
    assert_int_equal (rst_tgrate_size (rate), 1);
    assert_true (rst_tgrate_reserve (rate, BOT, CHAT, 1.0) == 0);
    assert_true (rst_tgrate_reserve (rate, BOT, CHAT, 1.0) > 0.99);
    //  Refilled and idle for 60 s: both go.
    assert_int_equal (rst_tgrate_forget_idle (rate, 59.0, 60), 0);
    assert_int_equal (rst_tgrate_forget_idle (rate, 61.0, 60), 2);
    assert_int_equal (rst_tgrate_size (rate), 0);
    assert_true (rst_tgrate_reserve (rate, BOT, CHAT, 61.0) == 0);

    //  A blocked state stays until the block is over.
    rst_tgrate_block (rate, BOT, CHAT, 500.0);
    assert_int_equal (rst_tgrate_forget_idle (rate, 400.0, 60), 0);
    assert_true (rst_tgrate_reserve (rate, BOT, CHAT, 400.0) > 99);
    assert_int_equal (rst_tgrate_forget_idle (rate, 500.0, 60), 2);

    //  100k chats, one every 40 ms (the bot's rate: it never waits).
    for (int64_t c = 1; c <= 100000; c++) {
        double now = 1000.0 + (double) c * 0.04;
        if (rst_tgrate_reserve (rate, BOT, c, now) != 0)
            fail_msg ("chat %lld refused", (long long) c);
    }
    assert_int_equal (rst_tgrate_size (rate), 100001);
    //  At t = 2260, chats 1..30000 (last used by t = 2200) go; the table
    //  keeps its size, so the states left must still be found where the
    //  deletions moved them: blocking them finds them and creates nothing.
    size_t freed = rst_tgrate_forget_idle (rate, 2260.0, 60);
    size_t kept = rst_tgrate_size (rate);
    assert_true (freed >= 29999 && freed <= 30001);
    assert_int_equal (freed + kept, 100001);
    for (int64_t c = 30002; c <= 100000; c++)
        rst_tgrate_block (rate, BOT, c, 2260.0);    //  already over: changes no answer
    assert_int_equal (rst_tgrate_size (rate), kept);
    //  At t = 5000 only chats used after t = 4940 stay (98500..100000, and
    //  the bot), and the table shrinks.
    freed = rst_tgrate_forget_idle (rate, 5000.0, 60);
    size_t kept2 = rst_tgrate_size (rate);
    assert_int_equal (freed + kept2, kept);
    assert_true (kept2 >= 1500 && kept2 <= 1502);
    for (int64_t c = 98600; c <= 100000; c++)
        rst_tgrate_block (rate, BOT, c, 5010.0);
    assert_int_equal (rst_tgrate_size (rate), kept2);
    assert_true (fabs (rst_tgrate_reserve (rate, BOT, 99999, 5000.0) - 10) < 1e-9);
    assert_int_equal (rst_tgrate_forget_idle (rate, 1e6, 60), kept2);
    assert_int_equal (rst_tgrate_size (rate), 0);
    rst_tgrate_destroy (&rate);
}

//  Bad parameters take the defaults; a burst below 1 becomes 1.
static void
test_parameters (void **state)
{
    (void) state;
    rst_tgrate_t *rate = rst_tgrate_new (0, NAN, -1, 0.2);
    assert_non_null (rate);
    //  Bot: defaults 25/s, burst 25. Chat: default 1/s, burst 1.
    assert_true (rst_tgrate_reserve (rate, BOT, CHAT, 0.0) == 0);
    double wait = rst_tgrate_reserve (rate, BOT, CHAT, 0.0);
    assert_true (wait > 0.99 && wait <= 1.0);
    int sent = 1;
    for (int64_t c = 2; c < 100; c++)
        if (rst_tgrate_reserve (rate, BOT, c, 0.0) == 0)
            sent++;
    assert_int_equal (sent, (int) RST_TGRATE_BOT_BURST);
    //  Time going backwards refills nothing and breaks nothing.
    assert_true (rst_tgrate_reserve (rate, BOT, CHAT, -50.0) > 0);
    assert_true (rst_tgrate_reserve (rate, BOT, CHAT, 1.0) == 0);
    rst_tgrate_destroy (&rate);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_chat_burst_then_rate),
        cmocka_unit_test (test_one_chat_over_100_seconds),
        cmocka_unit_test (test_bot_bucket_caps_all_chats),
        cmocka_unit_test (test_block_is_honoured),
        cmocka_unit_test (test_forget_idle),
        cmocka_unit_test (test_parameters),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
