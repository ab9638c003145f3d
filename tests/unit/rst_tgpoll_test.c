/*  rst_tgpoll_test — long polling many bots against the fake Telegram.

    The fake (tests/fakes/fake_telegram.py) runs for the whole group; every
    test registers its own bots there. The first test is the tour: 200 bots
    long-poll at once from one poller (the fake sees 200 polls waiting at
    the same time), updates injected for some of them arrive exactly once
    each, in batches of at most 100, and each bot's offset is confirmed to
    Telegram (nothing pending at the fake, offset = last update_id + 1). A
    batch the callback refuses comes again. Then the failures: 401, 429
    (waited out), 409, malformed replies, removal from inside a callback,
    and a server that answers at once (no hot loop).

    No timing assertions: checks of "did not poll again yet" only bound the
    number of polls from above, which a slow machine cannot break.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rst_clock.h"
#include "rst_tgpoll.h"
#include "tg_fake.h"

#include <stdio.h>
#include <string.h>

#define S_TIMEOUT_S 5               //  short long polls keep the test quick
#define S_MAX_SEEN 2048
#define S_MAX_ERRORS 256

static tg_fake_t s_fake;

typedef struct {
    int64_t bot_id;
    int64_t update_id;
    int count;                      //  times the callback got it
} s_seen_t;

typedef struct {
    int64_t bot_id;
    rst_telegram_status_t status;
    char err[512];
} s_error_t;

//  What the callbacks saw (static: too big for the stack).
typedef struct {
    rst_tgpoll_t *poller;
    s_seen_t seen[S_MAX_SEEN];
    size_t nseen;
    size_t largest_batch;
    int64_t refuse_bot;             //  its first batch is refused
    int refused;
    int64_t remove_bot;             //  removed from inside its callback
    s_error_t errors[S_MAX_ERRORS];
    size_t nerrors;
} s_ctx_t;

static s_ctx_t s_ctx;

static void
s_ctx_reset (rst_tgpoll_t *poller)
{
    memset (&s_ctx, 0, sizeof s_ctx);
    s_ctx.poller = poller;
}

static int
s_on_updates (void *arg, int64_t bot_id, const cJSON *updates, int64_t *next_offset_out)
{
    s_ctx_t *ctx = arg;
    size_t n = (size_t) cJSON_GetArraySize (updates);
    assert_true (n > 0 && n <= RST_TGPOLL_LIMIT);
    if (n > ctx->largest_batch)
        ctx->largest_batch = n;
    int64_t max = -1;
    const cJSON *u;
    cJSON_ArrayForEach (u, updates) {
        int64_t id = (int64_t) cJSON_GetObjectItem (u, "update_id")->valuedouble;
        if (id > max)
            max = id;
        size_t i;
        for (i = 0; i < ctx->nseen; i++)
            if (ctx->seen[i].bot_id == bot_id && ctx->seen[i].update_id == id)
                break;
        if (i == ctx->nseen) {
            assert_true (ctx->nseen < S_MAX_SEEN);
            ctx->seen[ctx->nseen++] = (s_seen_t) {bot_id, id, 0};
        }
        ctx->seen[i].count++;
    }
    assert_true (*next_offset_out == max + 1);      //  preset by the poller
    if (bot_id == ctx->remove_bot) {
        rst_tgpoll_remove_bot (ctx->poller, bot_id);
        return 0;
    }
    if (bot_id == ctx->refuse_bot && !ctx->refused) {
        ctx->refused = 1;
        return -1;                  //  "not stored": the same batch must come again
    }
    return 0;
}

static void
s_on_error (void *arg, int64_t bot_id, const rst_telegram_status_t *status, const char *err)
{
    s_ctx_t *ctx = arg;
    assert_true (ctx->nerrors < S_MAX_ERRORS);
    s_error_t *e = &ctx->errors[ctx->nerrors++];
    e->bot_id = bot_id;
    e->status = *status;
    snprintf (e->err, sizeof e->err, "%s", err);
    assert_null (strstr (err, "SECRET"));       //  never the token
}

//  The token of test bot ID (its secret part contains "SECRET").
static void
s_token (int64_t id, char *buf, size_t len)
{
    snprintf (buf, len, "%lld:AAF-SECRET_%lld_x", (long long) id, (long long) id);
}

static void
s_register (int64_t id)
{
    char token[64], name[32];
    s_token (id, token, sizeof token);
    snprintf (name, sizeof name, "bot%lld_bot", (long long) id);
    assert_int_equal (tg_fake_add_bot (&s_fake, token, name), 200);
}

//  Injects N text messages for BOT_ID; their update ids go to IDS (may be NULL).
static void
s_inject (int64_t bot_id, int n, const char *kind, int64_t *ids)
{
    cJSON *body = cJSON_CreateObject ();
    cJSON_AddNumberToObject (body, "bot_id", (double) bot_id);
    cJSON *list = cJSON_AddArrayToObject (body, "updates");
    for (int i = 0; i < n; i++) {
        cJSON *u = cJSON_CreateObject ();
        cJSON *m = cJSON_AddObjectToObject (u, kind);
        cJSON *chat = cJSON_AddObjectToObject (m, "chat");
        cJSON_AddNumberToObject (chat, "id", 1000 + i);
        if (strcmp (kind, "message") == 0) {
            cJSON_AddNumberToObject (m, "message_id", i + 1);
            cJSON_AddStringToObject (m, "text", "oi");
        }
        else {
            cJSON *member = cJSON_AddObjectToObject (m, "new_chat_member");
            cJSON_AddStringToObject (member, "status", "member");
            cJSON_AddNumberToObject (cJSON_AddObjectToObject (member, "user"), "id", 42);
        }
        cJSON_AddItemToArray (list, u);
    }
    char *text = cJSON_PrintUnformatted (body);
    char *reply = NULL;
    assert_int_equal (tg_fake_http (&s_fake, "POST", "/_fake/updates", text, &reply), 200);
    cJSON *r = cJSON_Parse (reply);
    cJSON *got = cJSON_GetObjectItem (r, "update_ids");
    assert_int_equal (cJSON_GetArraySize (got), n);
    for (int i = 0; ids && i < n; i++)
        ids[i] = (int64_t) cJSON_GetArrayItem (got, i)->valuedouble;
    cJSON_Delete (r);
    free (reply);
    cJSON_free (text);
    cJSON_Delete (body);
}

//  What the fake knows about BOT_ID's queue: pending count, polls, waiting, last offset.
typedef struct {
    int pending;
    int polls;
    int waiting;
    int64_t last_offset;
} s_queue_t;

static s_queue_t
s_queue_of (const cJSON *info)
{
    s_queue_t q = {0};
    q.pending = cJSON_GetArraySize (cJSON_GetObjectItem (info, "pending"));
    q.polls = cJSON_GetObjectItem (info, "polls")->valueint;
    q.waiting = cJSON_GetObjectItem (info, "waiting")->valueint;
    const cJSON *lo = cJSON_GetObjectItem (info, "last_offset");
    q.last_offset = cJSON_IsNumber (lo) ? (int64_t) lo->valuedouble : -1;
    return q;
}

static s_queue_t
s_queue (int64_t bot_id)
{
    char path[64];
    snprintf (path, sizeof path, "/_fake/updates?bot_id=%lld", (long long) bot_id);
    cJSON *info = tg_fake_get_json (&s_fake, path);
    assert_non_null (info);
    s_queue_t q = s_queue_of (info);
    cJSON_Delete (info);
    return q;
}

//  getUpdates calls of BOT_ID that the fake has answered so far.
static int
s_answered_polls (int64_t bot_id)
{
    cJSON *calls = tg_fake_get_json (&s_fake, "/_fake/calls");
    assert_non_null (calls);
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach (c, calls)
        if (strcmp (cJSON_GetObjectItem (c, "method")->valuestring, "getUpdates") == 0
            && (int64_t) cJSON_GetObjectItem (c, "bot_id")->valuedouble == bot_id)
            n++;
    cJSON_Delete (calls);
    return n;
}

//  Drives POLLER for MS milliseconds.
static void
s_run_for (rst_tgpoll_t *poller, int ms)
{
    int64_t end = rst_clock_mono_ms () + ms;
    for (int64_t now = rst_clock_mono_ms (); now < end; now = rst_clock_mono_ms ())
        assert_true (rst_tgpoll_run (poller, (int) (end - now), s_on_updates, s_on_error,
                                     &s_ctx) >= 0);
}

//  TCP connections the fake has accepted so far.
static int
s_connections (void)
{
    cJSON *stats = tg_fake_get_json (&s_fake, "/_fake/stats");
    assert_non_null (stats);
    int n = cJSON_GetObjectItem (stats, "connections")->valueint;
    cJSON_Delete (stats);
    return n;
}

static int
s_count_of (int64_t bot_id, int64_t update_id)
{
    for (size_t i = 0; i < s_ctx.nseen; i++)
        if (s_ctx.seen[i].bot_id == bot_id && s_ctx.seen[i].update_id == update_id)
            return s_ctx.seen[i].count;
    return 0;
}

static size_t
s_errors_of (int64_t bot_id, int code)
{
    size_t n = 0;
    for (size_t i = 0; i < s_ctx.nerrors; i++)
        if (s_ctx.errors[i].bot_id == bot_id
            && (code == 0 || s_ctx.errors[i].status.error_code == code))
            n++;
    return n;
}

#ifndef S_BOTS
#define S_BOTS 200                  //  -DS_BOTS=1000 for the full-size check by hand
#endif
#define S_BASE INT64_C (800000)

static void
test_many_bots (void **state)
{
    (void) state;
    char err[256] = "";
    rst_tgpoll_t *poller = rst_tgpoll_new (s_fake.url, S_TIMEOUT_S, err, sizeof err);
    assert_non_null (poller);
    s_ctx_reset (poller);
    for (int i = 0; i < S_BOTS; i++) {
        char token[64];
        s_register (S_BASE + i);
        s_token (S_BASE + i, token, sizeof token);
        assert_int_equal (rst_tgpoll_set_bot (poller, S_BASE + i, token, 0), 0);
    }
    assert_int_equal (rst_tgpoll_count (poller), S_BOTS);
    int connections = s_connections ();

    //  1. All 200 long polls wait at the fake at the same moment.
    int all_waiting = 0;
    for (int round = 0; round < 300 && !all_waiting; round++) {
        s_run_for (poller, 100);
        cJSON *all = tg_fake_get_json (&s_fake, "/_fake/updates");
        int waiting = 0;
        for (int i = 0; i < S_BOTS; i++) {
            char key[24];
            snprintf (key, sizeof key, "%lld", (long long) (S_BASE + i));
            waiting += s_queue_of (cJSON_GetObjectItem (all, key)).waiting > 0;
        }
        cJSON_Delete (all);
        all_waiting = waiting == S_BOTS;
    }
    assert_true (all_waiting);

    //  2. Updates for some: 3 each for 50 bots, 150 for one (two batches), a join for one
    //     (chat_member must be asked for), and 3 for a bot whose first batch is refused.
    static int64_t ids[S_BOTS][150];
    static int nids[S_BOTS];
    for (int i = 0; i < 50; i++)
        s_inject (S_BASE + i, nids[i] = 3, "message", ids[i]);
    s_inject (S_BASE + 50, nids[50] = 150, "message", ids[50]);
    s_inject (S_BASE + 51, nids[51] = 1, "chat_member", ids[51]);
    s_inject (S_BASE + 52, nids[52] = 3, "message", ids[52]);
    s_ctx.refuse_bot = S_BASE + 52;
    size_t expected = 50 * 3 + 150 + 1 + 3;

    for (int round = 0; round < 300 && s_ctx.nseen < expected; round++)
        s_run_for (poller, 100);
    assert_int_equal (s_ctx.nseen, expected);
    assert_int_equal (s_ctx.largest_batch, 100);
    assert_true (s_ctx.refused);

    //  3. Every offset is confirmed: nothing pending at the fake, the poller asks for
    //     last id + 1, and the fake saw that offset.
    int confirmed = 0;
    for (int round = 0; round < 300 && !confirmed; round++) {
        s_run_for (poller, 100);
        confirmed = 1;
        for (int i = 0; i <= 52 && confirmed; i++) {
            s_queue_t q = s_queue (S_BASE + i);
            confirmed = q.pending == 0 && q.last_offset == ids[i][nids[i] - 1] + 1;
        }
    }
    assert_true (confirmed);
    for (int i = 0; i <= 52; i++)
        assert_true (rst_tgpoll_offset (poller, S_BASE + i) == ids[i][nids[i] - 1] + 1);
    assert_true (rst_tgpoll_offset (poller, S_BASE + 60) == 0);     //  no updates: unchanged

    //  4. Exactly once each; the refused batch exactly twice. Nothing comes again later.
    s_run_for (poller, 1000);
    assert_int_equal (s_ctx.nseen, expected);
    for (int i = 0; i <= 52; i++)
        for (int k = 0; k < nids[i]; k++)
            if (s_count_of (S_BASE + i, ids[i][k]) != (i == 52 ? 2 : 1))
                fail_msg ("bot %d update %lld came %d times", i, (long long) ids[i][k],
                          s_count_of (S_BASE + i, ids[i][k]));
    assert_int_equal (s_ctx.nerrors, 0);
    //  Keep-alive: more than S_BOTS + 53 polls so far, yet one connection per bot (and
    //  the test's own control connection, kept alive too).
    assert_true (s_connections () - connections <= S_BOTS + 2);

    //  5. Removing half of them while their polls are in flight.
    for (int i = 0; i < S_BOTS; i += 2)
        rst_tgpoll_remove_bot (poller, S_BASE + i);
    assert_int_equal (rst_tgpoll_count (poller), S_BOTS / 2);
    assert_true (rst_tgpoll_offset (poller, S_BASE) == -1);
    rst_tgpoll_remove_bot (poller, S_BASE);        //  unknown now: ignored
    s_run_for (poller, 200);
    rst_tgpoll_destroy (&poller);                   //  with polls in flight
    assert_null (poller);
}

static void
test_unauthorized_and_new_token (void **state)
{
    (void) state;
    char err[256] = "";
    rst_tgpoll_t *poller = rst_tgpoll_new (s_fake.url, S_TIMEOUT_S, err, sizeof err);
    assert_non_null (poller);
    s_ctx_reset (poller);
    int64_t bot = 900001;
    char token[64];
    s_token (bot, token, sizeof token);
    //  Not registered at the fake: 401, reported once, then a long wait.
    assert_int_equal (rst_tgpoll_set_bot (poller, bot, token, 0), 0);
    for (int round = 0; round < 100 && s_errors_of (bot, 0) == 0; round++)
        s_run_for (poller, 100);
    assert_int_equal (s_errors_of (bot, 401), 1);
    assert_int_equal (s_ctx.errors[0].status.http_status, 401);
    assert_non_null (strstr (s_ctx.errors[0].err, "401"));
    s_run_for (poller, 1500);
    assert_int_equal (s_errors_of (bot, 0), 1);    //  no retry within 300 s

    //  The owner fixes the token: polling starts at once, no backoff.
    char fixed[64];
    snprintf (fixed, sizeof fixed, "%lld:AAF-SECRET_fixed", (long long) bot);
    assert_int_equal (tg_fake_add_bot (&s_fake, fixed, "fixed_bot"), 200);
    assert_int_equal (rst_tgpoll_set_bot (poller, bot, fixed, 0), 0);
    int64_t id;
    s_inject (bot, 1, "message", &id);
    for (int round = 0; round < 100 && s_count_of (bot, id) == 0; round++)
        s_run_for (poller, 100);
    assert_int_equal (s_count_of (bot, id), 1);

    //  Bad arguments are refused without a crash.
    assert_int_equal (rst_tgpoll_set_bot (poller, 0, fixed, 0), -1);
    assert_int_equal (rst_tgpoll_set_bot (poller, 5, "no colon", 0), -1);
    assert_int_equal (rst_tgpoll_count (poller), 1);
    rst_tgpoll_destroy (&poller);
}

static void
test_flood_wait (void **state)
{
    (void) state;
    char err[256] = "";
    rst_tgpoll_t *poller = rst_tgpoll_new (s_fake.url, S_TIMEOUT_S, err, sizeof err);
    assert_non_null (poller);
    s_ctx_reset (poller);
    int64_t bot = 900002;
    char token[64];
    s_register (bot);
    s_token (bot, token, sizeof token);
    assert_int_equal (tg_fake_post (&s_fake, "/_fake/faults",
                                    "{\"method\":\"getUpdates\",\"status\":429,\"retry_after\":3,"
                                    "\"bot_id\":900002}"), 200);
    assert_int_equal (rst_tgpoll_set_bot (poller, bot, token, 0), 0);
    for (int round = 0; round < 100 && s_errors_of (bot, 0) == 0; round++)
        s_run_for (poller, 100);
    assert_int_equal (s_errors_of (bot, 429), 1);
    assert_int_equal (s_ctx.errors[0].status.retry_after, 3);
    //  Waited out: no new poll reaches the fake within the first 1.5 s of 3.
    s_run_for (poller, 1500);
    assert_int_equal (s_queue (bot).polls, 0);
    assert_int_equal (s_answered_polls (bot), 1);
    //  ... and afterwards polling resumes and delivers.
    int64_t id;
    s_inject (bot, 1, "message", &id);
    for (int round = 0; round < 100 && s_count_of (bot, id) == 0; round++)
        s_run_for (poller, 100);
    assert_int_equal (s_count_of (bot, id), 1);
    assert_int_equal (s_errors_of (bot, 0), 1);
    rst_tgpoll_destroy (&poller);
}

static void
test_conflict_and_malformed (void **state)
{
    (void) state;
    char err[256] = "";
    rst_tgpoll_t *poller = rst_tgpoll_new (s_fake.url, S_TIMEOUT_S, err, sizeof err);
    assert_non_null (poller);
    s_ctx_reset (poller);
    int64_t hooked = 900003, garbage = 900004, not_array = 900005, no_id = 900006;
    char token[64];
    for (int64_t b = hooked; b <= no_id; b++) {
        s_register (b);
        s_token (b, token, sizeof token);
        assert_int_equal (rst_tgpoll_set_bot (poller, b, token, 0), 0);
    }
    //  A webhook is set for one bot: its poll is a conflict (409).
    rst_telegram_t *tg = rst_telegram_new (s_fake.url, err, sizeof err);
    s_token (hooked, token, sizeof token);
    assert_int_equal (rst_telegram_set_webhook (tg, token, "http://127.0.0.1:1/hook", "s3cr3t",
                                                NULL, err, sizeof err), 0);
    rst_telegram_destroy (&tg);
    //  Three kinds of malformed replies, once each.
    assert_int_equal (tg_fake_post (&s_fake, "/_fake/faults",
                                    "{\"faults\":[{\"method\":\"getUpdates\",\"status\":\"garbage\","
                                    "\"bot_id\":900004},{\"method\":\"getUpdates\",\"status\":200,"
                                    "\"bot_id\":900005,\"body\":{\"ok\":true,\"result\":{}}},"
                                    "{\"method\":\"getUpdates\",\"status\":200,\"bot_id\":900006,"
                                    "\"body\":{\"ok\":true,\"result\":[{\"message\":{}}]}}]}"),
                      200);
    //  Their current long polls end when updates arrive; the next poll meets the fault.
    int64_t first[3];
    for (int64_t b = garbage; b <= no_id; b++)
        s_inject (b, 1, "message", &first[b - garbage]);
    for (int round = 0; round < 200; round++) {
        s_run_for (poller, 100);
        if (s_errors_of (hooked, 409) && s_errors_of (garbage, 0) && s_errors_of (not_array, 0)
            && s_errors_of (no_id, 0))
            break;
    }
    assert_int_equal (s_errors_of (hooked, 409), 1);
    assert_int_equal (s_errors_of (garbage, 0), 1);
    assert_int_equal (s_errors_of (not_array, 0), 1);
    assert_int_equal (s_errors_of (no_id, 0), 1);
    for (size_t i = 0; i < s_ctx.nerrors; i++) {
        const s_error_t *e = &s_ctx.errors[i];
        if (e->bot_id == garbage)
            assert_non_null (strstr (e->err, "unexpected reply"));
        if (e->bot_id == not_array)
            assert_non_null (strstr (e->err, "not an array"));
        if (e->bot_id == no_id)
            assert_non_null (strstr (e->err, "update_id"));
    }
    //  After a short backoff the malformed ones recover and deliver what was injected.
    int64_t later[3];
    for (int64_t b = garbage; b <= no_id; b++)
        s_inject (b, 1, "message", &later[b - garbage]);
    for (int round = 0; round < 200; round++) {
        s_run_for (poller, 100);
        int all = 1;
        for (int k = 0; k < 3; k++)
            all = all && s_count_of (garbage + k, later[k]) == 1;
        if (all)
            break;
    }
    for (int k = 0; k < 3; k++)
        assert_int_equal (s_count_of (garbage + k, later[k]), 1);
    //  The conflicting bot waits 30 s: still one error.
    assert_int_equal (s_errors_of (hooked, 0), 1);
    rst_tgpoll_destroy (&poller);
}

static void
test_remove_in_callback_and_no_hot_loop (void **state)
{
    (void) state;
    char err[256] = "";
    rst_tgpoll_t *poller = rst_tgpoll_new (s_fake.url, S_TIMEOUT_S, err, sizeof err);
    assert_non_null (poller);
    s_ctx_reset (poller);
    int64_t leaving = 900007, eager = 900008, steady = 900009;
    char token[64];
    for (int64_t b = leaving; b <= steady; b++) {
        s_register (b);
        s_token (b, token, sizeof token);
        assert_int_equal (rst_tgpoll_set_bot (poller, b, token, 0), 0);
    }
    //  A server that answers every poll of one bot at once with nothing.
    assert_int_equal (tg_fake_post (&s_fake, "/_fake/faults",
                                    "{\"method\":\"getUpdates\",\"status\":200,\"bot_id\":900008,"
                                    "\"count\":-1,\"body\":{\"ok\":true,\"result\":[]}}"), 200);
    s_ctx.remove_bot = leaving;
    int64_t gone, kept;
    s_inject (leaving, 1, "message", &gone);
    s_inject (steady, 1, "message", &kept);
    s_run_for (poller, 2500);
    assert_int_equal (s_count_of (leaving, gone), 1);
    assert_int_equal (s_count_of (steady, kept), 1);
    assert_int_equal (rst_tgpoll_count (poller), 2);
    assert_true (rst_tgpoll_offset (poller, leaving) == -1);
    int polls_after = s_queue (leaving).polls;
    //  At most one poll a second for the eager one (a hot loop would make hundreds).
    int eager_polls = s_answered_polls (eager);
    assert_true (eager_polls >= 1);
    assert_true (eager_polls <= 4);
    //  The removed bot is not polled again.
    s_run_for (poller, 300);
    assert_int_equal (s_queue (leaving).polls, polls_after);
    assert_int_equal (tg_fake_post (&s_fake, "/_fake/faults", "{\"clear\":true}"), 200);
    rst_tgpoll_destroy (&poller);
}

static void
test_new_refuses (void **state)
{
    (void) state;
    char err[256] = "";
    assert_null (rst_tgpoll_new ("ftp://x", 5, err, sizeof err));
    assert_non_null (strstr (err, "http"));
    assert_null (rst_tgpoll_new ("http://x", 51, err, sizeof err));
    assert_null (rst_tgpoll_new ("http://x", -1, err, sizeof err));
    rst_tgpoll_t *poller = rst_tgpoll_new ("http://127.0.0.1:1/", 0, err, sizeof err);
    assert_non_null (poller);
    assert_int_equal (rst_tgpoll_count (poller), 0);
    assert_int_equal (rst_tgpoll_run (poller, 0, s_on_updates, NULL, NULL), 0);
    rst_tgpoll_destroy (&poller);
    rst_tgpoll_destroy (&poller);       //  safe to repeat
}

static int
s_group_setup (void **state)
{
    (void) state;
    return tg_fake_start (&s_fake, NULL);
}

static int
s_group_teardown (void **state)
{
    (void) state;
    tg_fake_stop (&s_fake);
    return 0;
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_many_bots),
        cmocka_unit_test (test_unauthorized_and_new_token),
        cmocka_unit_test (test_flood_wait),
        cmocka_unit_test (test_conflict_and_malformed),
        cmocka_unit_test (test_remove_in_callback_and_no_hot_loop),
        cmocka_unit_test (test_new_refuses),
    };
    return cmocka_run_group_tests (tests, s_group_setup, s_group_teardown);
}
