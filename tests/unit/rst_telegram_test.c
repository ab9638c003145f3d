/*  rst_telegram_test — the Bot API client's local checks.

    A token is "<bot_id>:<secret>". rastro checks its shape before any
    request, so that a typo gets a precise message at once, and so that
    nothing that could change the URL (a '/', '?', '#', '%', a space) is
    ever put into one. The messages never repeat the token. The network
    part is exercised by tests/integration/test_admin.sh with the fake.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rst_telegram.h"

#include <stdio.h>
#include <string.h>

//  The tour: a token from @BotFather passes, and its bot id is the prefix.
static void
test_good_tokens (void **state)
{
    (void) state;
    char err[256] = "";
    const char *token = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11";
    assert_int_equal (rst_telegram_token_check (token, err, sizeof err), 0);
    assert_int_equal (rst_telegram_token_bot_id (token), 123456);

    static const char *good[] = {
        "1:a",
        "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
        "18014398509481983:abc",         //  2^54 - 1, the largest bot id
        "7:___---",
        NULL,
    };
    for (int i = 0; good[i]; i++) {
        err[0] = 0;
        assert_int_equal (rst_telegram_token_check (good[i], err, sizeof err), 0);
    }
    assert_int_equal (rst_telegram_token_bot_id ("18014398509481983:abc"),
                      INT64_C (18014398509481983));
}

static void
test_bad_tokens (void **state)
{
    (void) state;
    char long_token[RST_TELEGRAM_TOKEN_MAX + 2];
    memset (long_token, 'a', sizeof long_token - 1);
    memcpy (long_token, "123:", 4);
    long_token[sizeof long_token - 1] = 0;  //  81 characters

    static const struct {
        const char *token;
        const char *says;           //  part of the expected message
    } bad[] = {
        {"", "empty"},
        {"abcdef", "no ':'"},
        {"0123:abc", "leading 0"},
        {"0:abc", "leading 0"},
        {":abc", "bot's id"},
        {"123:", "nothing after"},
        {"12a:abc", "digits only"},
        {"-1:abc", "digits only"},
        {"+1:abc", "digits only"},
        {"18014398509481984:abc", "2^54"},              //  2^54
        {"99999999999999999999999:abc", "2^54"},        //  would overflow int64
        {"123:ab/cd", "'/'"},
        {"123:ab cd", "space"},
        {"123:abc\n", "letters"},
        {"123:abc?x=1", "letters"},
        {"123:abc#frag", "letters"},
        {"123:ab%2Fcd", "letters"},
        {"123:abc:def", "letters"},
        {NULL, NULL},
    };
    for (int i = 0; bad[i].token; i++) {
        char err[256] = "";
        if (rst_telegram_token_check (bad[i].token, err, sizeof err) != -1)
            fail_msg ("token #%d was accepted", i);
        if (!strstr (err, bad[i].says))
            fail_msg ("token #%d: message '%s' does not say '%s'", i, err, bad[i].says);
        //  The message never repeats the secret part.
        const char *secret = strchr (bad[i].token, ':');
        if (secret && strlen (secret + 1) >= 3 && strstr (err, secret + 1))
            fail_msg ("token #%d: message repeats the token: %s", i, err);
        assert_int_equal (rst_telegram_token_bot_id (bad[i].token), -1);
    }
    char err[256] = "";
    assert_int_equal (rst_telegram_token_check (long_token, err, sizeof err), -1);
    assert_non_null (strstr (err, "at most 80"));
    assert_null (strstr (err, long_token + 4));
    long_token[RST_TELEGRAM_TOKEN_MAX] = 0;          //  exactly 80: fine
    assert_int_equal (rst_telegram_token_check (long_token, err, sizeof err), 0);
    assert_int_equal (rst_telegram_token_check (NULL, err, sizeof err), -1);
    assert_int_equal (rst_telegram_token_bot_id (NULL), -1);
}

static void
test_client_lifecycle (void **state)
{
    (void) state;
    char err[256] = "";
    assert_null (rst_telegram_new ("ftp://example.org", err, sizeof err));
    assert_non_null (strstr (err, "http"));

    rst_telegram_t *tg = rst_telegram_new ("http://127.0.0.1:1///", err, sizeof err);
    assert_non_null (tg);
    //  A malformed token is refused before any request.
    rst_telegram_bot_t bot;
    assert_int_equal (rst_telegram_get_me (tg, "nope", &bot, err, sizeof err), -1);
    assert_non_null (strstr (err, "no ':'"));
    rst_telegram_destroy (&tg);
    assert_null (tg);
    rst_telegram_destroy (&tg);     //  safe to repeat
}

static void
test_transport_error_hides_token (void **state)
{
    (void) state;
    char err[512] = "";
    //  Port 1 on loopback: nobody listens, the connection is refused.
    rst_telegram_t *tg = rst_telegram_new ("http://127.0.0.1:1", err, sizeof err);
    assert_non_null (tg);
    const char *token = "4242:SECRETsecretSECRETsecret_-x";
    rst_telegram_bot_t bot;
    assert_int_equal (rst_telegram_get_me (tg, token, &bot, err, sizeof err), -1);
    assert_non_null (strstr (err, "getMe"));
    assert_null (strstr (err, "SECRETsecret"));
    assert_null (strchr (err, '\n'));
    rst_telegram_destroy (&tg);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_good_tokens),
        cmocka_unit_test (test_bad_tokens),
        cmocka_unit_test (test_client_lifecycle),
        cmocka_unit_test (test_transport_error_hides_token),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
