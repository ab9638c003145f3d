/*  rst_telegram_test — the Bot API client's local checks.

    A token is "<bot_id>:<secret>". rastro checks its shape before any
    request, so that a typo gets a precise message at once, and so that
    nothing that could change the URL (a '/', '?', '#', '%', a space) is
    ever put into one. The messages never repeat the token.

    The bots node's methods run against the fake Telegram
    (tests/fakes/fake_telegram.py, started once for the group): what the
    fake received is read back from its /_fake/sent and /_fake/calls, so
    each test checks the request Telegram would see (exact chat ids, the
    keyboard, the uploaded bytes' SHA-256) and how errors come back (429
    retry_after from the envelope or from the header alone, 401, 400).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rst_telegram.h"
#include "tg_fake.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static tg_fake_t s_fake;

#define S_TOKEN   "7001:AAHsendSECRETpartOfTheToken_x"
#define S_SECRET  "AAHsendSECRETpartOfTheToken_x"
#define S_CHAT    INT64_C (-1002345678901234)      //  needs more than 32 bits, exact in JSON

//  A PNG as far as Telegram's checks go: signature and an IHDR of 200x100.
static const unsigned char s_png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13,
                                      'I', 'H', 'D', 'R', 0, 0, 0, 200, 0, 0, 0, 100, 8, 2, 0, 0,
                                      0, 0x11, 0x22, 0x33, 0x44};

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

//  The last entry of the fake's /_fake/sent (the caller's, cJSON_Delete the root).
static cJSON *
s_last_sent (cJSON **root_p)
{
    *root_p = tg_fake_get_json (&s_fake, "/_fake/sent");
    assert_non_null (*root_p);
    int n = cJSON_GetArraySize (*root_p);
    assert_true (n > 0);
    return cJSON_GetArrayItem (*root_p, n - 1);
}

static int
s_sent_count (void)
{
    cJSON *root = tg_fake_get_json (&s_fake, "/_fake/sent");
    assert_non_null (root);
    int n = cJSON_GetArraySize (root);
    cJSON_Delete (root);
    return n;
}

static const char *
s_str (const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive (obj, name);
    assert_true (cJSON_IsString (item));
    return item->valuestring;
}

//  The number that OBJ's NAME holds, printed exactly (JSON text of the fake).
static void
s_assert_int (const cJSON *obj, const char *name, int64_t expected)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive (obj, name);
    assert_true (cJSON_IsNumber (item));
    assert_true (item->valuedouble == (double) expected);
}

static void
test_send_message (void **state)
{
    (void) state;
    char err[512] = "";
    rst_telegram_t *tg = rst_telegram_new (s_fake.url, err, sizeof err);
    assert_non_null (tg);
    //  A welcome with two buttons: one per row, callback data and a link.
    rst_tg_button_t buttons[] = {
        {.text = "Comprar R$ 19,90", .callback_data = "buy:42"},
        {.text = "Site", .url = "https://example.org/x"},
    };
    int64_t id1 = 0, id2 = 0;
    rst_telegram_status_t st;
    int rc = rst_telegram_send_message (tg, S_TOKEN, S_CHAT, "<b>Olá</b> &amp; bem-vindo", buttons,
                                        2, &id1, &st, err, sizeof err);
    if (rc)
        fail_msg ("%s", err);
    assert_int_equal (st.http_status, 200);
    assert_true (id1 > 0);
    cJSON *root;
    cJSON *sent = s_last_sent (&root);
    assert_string_equal (s_str (sent, "method"), "sendMessage");
    s_assert_int (sent, "chat_id", S_CHAT);
    s_assert_int (sent, "message_id", id1);
    assert_string_equal (s_str (sent, "text"), "<b>Olá</b> &amp; bem-vindo");
    assert_string_equal (s_str (sent, "text_plain"), "Olá & bem-vindo");
    assert_string_equal (s_str (sent, "parse_mode"), "HTML");
    cJSON *rows = cJSON_GetObjectItem (cJSON_GetObjectItem (sent, "reply_markup"), "inline_keyboard");
    assert_int_equal (cJSON_GetArraySize (rows), 2);
    cJSON *b0 = cJSON_GetArrayItem (cJSON_GetArrayItem (rows, 0), 0);
    cJSON *b1 = cJSON_GetArrayItem (cJSON_GetArrayItem (rows, 1), 0);
    assert_int_equal (cJSON_GetArraySize (cJSON_GetArrayItem (rows, 0)), 1);
    assert_string_equal (s_str (b0, "text"), "Comprar R$ 19,90");
    assert_string_equal (s_str (b0, "callback_data"), "buy:42");
    assert_null (cJSON_GetObjectItem (b0, "url"));
    assert_string_equal (s_str (b1, "url"), "https://example.org/x");
    cJSON_Delete (root);

    //  No buttons, no message id wanted; ids keep increasing.
    assert_int_equal (rst_telegram_send_message (tg, S_TOKEN, 111, "plain", NULL, 0, NULL, NULL,
                                                 err, sizeof err), 0);
    assert_int_equal (rst_telegram_send_message (tg, S_TOKEN, 111, "again", NULL, 0, &id2, NULL,
                                                 err, sizeof err), 0);
    assert_true (id2 > id1);
    rst_telegram_destroy (&tg);
}

static void
test_send_message_refused (void **state)
{
    (void) state;
    char err[512] = "";
    rst_telegram_t *tg = rst_telegram_new (s_fake.url, err, sizeof err);
    assert_non_null (tg);
    int before = s_sent_count ();
    char data65[66];
    memset (data65, 'x', 65);
    data65[65] = 0;
    static const struct {
        rst_tg_button_t button;
        const char *says;
    } bad[] = {
        {{.text = "", .callback_data = "a"}, "no text"},
        {{.text = NULL, .callback_data = "a"}, "no text"},
        {{.text = "x", .callback_data = "a", .url = "https://x"}, "exactly one"},
        {{.text = "x"}, "exactly one"},
        {{.text = "x", .callback_data = ""}, "1-64 bytes"},
        {{.text = "x", .url = "javascript:alert(1)"}, "url"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        assert_int_equal (rst_telegram_send_message (tg, S_TOKEN, 5, "hi", &bad[i].button, 1, NULL,
                                                     NULL, err, sizeof err), -1);
        if (!strstr (err, bad[i].says))
            fail_msg ("button %zu: '%s' does not say '%s'", i, err, bad[i].says);
    }
    rst_tg_button_t long_data = {.text = "x", .callback_data = data65};
    assert_int_equal (rst_telegram_send_message (tg, S_TOKEN, 5, "hi", &long_data, 1, NULL, NULL,
                                                 err, sizeof err), -1);
    assert_non_null (strstr (err, "has 65"));
    data65[64] = 0;             //  exactly 64 bytes: fine
    assert_int_equal (rst_telegram_send_message (tg, S_TOKEN, 5, "hi", &long_data, 1, NULL, NULL,
                                                 err, sizeof err), 0);
    assert_int_equal (rst_telegram_send_message (tg, S_TOKEN, 5, "", NULL, 0, NULL, NULL, err,
                                                 sizeof err), -1);
    assert_int_equal (rst_telegram_send_message (tg, "bad token", 5, "hi", NULL, 0, NULL, NULL, err,
                                                 sizeof err), -1);
    assert_int_equal (s_sent_count (), before + 1);      //  only the 64-byte one went out

    //  Telegram's own refusals: malformed HTML (400), an unknown token (401).
    rst_telegram_status_t st;
    assert_int_equal (rst_telegram_send_message (tg, S_TOKEN, 5, "a <br> b", NULL, 0, NULL, &st,
                                                 err, sizeof err), -1);
    assert_int_equal (st.error_code, 400);
    assert_int_equal (st.http_status, 400);
    assert_non_null (strstr (err, "can't parse entities"));
    assert_int_equal (rst_telegram_send_message (tg, "7002:UNKNOWNsecretUNKNOWN", 5, "hi", NULL, 0,
                                                 NULL, &st, err, sizeof err), -1);
    assert_int_equal (st.error_code, 401);
    assert_non_null (strstr (err, "401"));
    assert_null (strstr (err, "UNKNOWNsecret"));
    rst_telegram_destroy (&tg);
}

static void
test_flood_wait (void **state)
{
    (void) state;
    char err[512] = "";
    rst_telegram_t *tg = rst_telegram_new (s_fake.url, err, sizeof err);
    assert_non_null (tg);
    rst_telegram_status_t st;
    //  429 with parameters.retry_after (and the header).
    assert_int_equal (tg_fake_post (&s_fake, "/_fake/faults",
                                    "{\"method\":\"sendMessage\",\"status\":429,\"retry_after\":7}"),
                      200);
    assert_int_equal (rst_telegram_send_message (tg, S_TOKEN, 5, "hi", NULL, 0, NULL, &st, err,
                                                 sizeof err), -1);
    assert_int_equal (st.http_status, 429);
    assert_int_equal (st.error_code, 429);
    assert_int_equal (st.retry_after, 7);
    assert_non_null (strstr (err, "retry after 7"));
    assert_null (strstr (err, S_SECRET));
    //  429 with only the Retry-After header.
    assert_int_equal (tg_fake_post (&s_fake, "/_fake/faults",
                                    "{\"method\":\"answerCallbackQuery\",\"status\":429,"
                                    "\"retry_after\":3,\"parameters\":false}"),
                      200);
    assert_int_equal (rst_telegram_answer_callback (tg, S_TOKEN, "123", NULL, &st, err, sizeof err),
                      -1);
    assert_int_equal (st.retry_after, 3);
    //  The fault was for one call: the next one goes through.
    assert_int_equal (rst_telegram_send_message (tg, S_TOKEN, 5, "hi", NULL, 0, NULL, &st, err,
                                                 sizeof err), 0);
    assert_int_equal (st.retry_after, 0);
    //  A 500 that is not a Bot API answer at all.
    assert_int_equal (tg_fake_post (&s_fake, "/_fake/faults",
                                    "{\"method\":\"sendMessage\",\"status\":\"garbage\"}"), 200);
    assert_int_equal (rst_telegram_send_message (tg, S_TOKEN, 5, "hi", NULL, 0, NULL, &st, err,
                                                 sizeof err), -1);
    assert_non_null (strstr (err, "unexpected reply"));
    rst_telegram_destroy (&tg);
}

static void
test_send_photo (void **state)
{
    (void) state;
    char err[512] = "";
    rst_telegram_t *tg = rst_telegram_new (s_fake.url, err, sizeof err);
    assert_non_null (tg);
    unsigned char hash[crypto_hash_sha256_BYTES];
    char hex[crypto_hash_sha256_BYTES * 2 + 1];
    crypto_hash_sha256 (hash, s_png, sizeof s_png);
    sodium_bin2hex (hex, sizeof hex, hash, sizeof hash);

    //  Upload: multipart, with a caption and a button.
    rst_tg_button_t pay = {.text = "Paguei", .callback_data = "paid:9"};
    char file_id[RST_TELEGRAM_FILE_ID_MAX];
    int rc = rst_telegram_send_photo (tg, S_TOKEN, S_CHAT, s_png, sizeof s_png, "qr.png", NULL,
                                      "<b>PIX</b> copia e cola", &pay, 1, file_id, NULL, err,
                                      sizeof err);
    if (rc)
        fail_msg ("%s", err);
    assert_true (strlen (file_id) > 10);
    cJSON *root;
    cJSON *sent = s_last_sent (&root);
    assert_string_equal (s_str (sent, "method"), "sendPhoto");
    s_assert_int (sent, "chat_id", S_CHAT);
    assert_string_equal (s_str (sent, "photo_sha256"), hex);
    s_assert_int (sent, "photo_size", sizeof s_png);
    assert_string_equal (s_str (sent, "photo_source"), "upload");
    assert_string_equal (s_str (sent, "photo_file_id"), file_id);     //  the largest size's
    assert_string_equal (s_str (sent, "caption"), "<b>PIX</b> copia e cola");
    cJSON *rows = cJSON_GetObjectItem (cJSON_GetObjectItem (sent, "reply_markup"), "inline_keyboard");
    assert_string_equal (s_str (cJSON_GetArrayItem (cJSON_GetArrayItem (rows, 0), 0), "callback_data"),
                         "paid:9");
    cJSON_Delete (root);

    //  Again by file_id, no caption: the same picture, no upload.
    char again[RST_TELEGRAM_FILE_ID_MAX];
    rc = rst_telegram_send_photo (tg, S_TOKEN, 111, NULL, 0, NULL, file_id, NULL, NULL, 0, again,
                                  NULL, err, sizeof err);
    if (rc)
        fail_msg ("%s", err);
    assert_string_equal (again, file_id);
    sent = s_last_sent (&root);
    assert_string_equal (s_str (sent, "photo_source"), "file_id");
    assert_string_equal (s_str (sent, "photo_sha256"), hex);
    cJSON_Delete (root);

    //  A 3 MB upload (libcurl asks "Expect: 100-continue") and a JPEG arrive intact.
    size_t big_len = 3 * 1024 * 1024;
    unsigned char *big = malloc (big_len);
    assert_non_null (big);
    randombytes_buf (big, big_len);
    memcpy (big, s_png, sizeof s_png);
    crypto_hash_sha256 (hash, big, big_len);
    sodium_bin2hex (hex, sizeof hex, hash, sizeof hash);
    rc = rst_telegram_send_photo (tg, S_TOKEN, 111, big, big_len, NULL, NULL, NULL, NULL, 0, NULL,
                                  NULL, err, sizeof err);
    free (big);
    if (rc)
        fail_msg ("%s", err);
    sent = s_last_sent (&root);
    assert_string_equal (s_str (sent, "photo_sha256"), hex);
    s_assert_int (sent, "photo_size", (int64_t) big_len);
    cJSON_Delete (root);
    static const unsigned char jpeg[] = {0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0, 1,
                                         1, 0, 0, 1, 0, 1, 0, 0, 0xFF, 0xD9};
    assert_int_equal (rst_telegram_send_photo (tg, S_TOKEN, 111, jpeg, sizeof jpeg, NULL, NULL,
                                               NULL, NULL, 0, NULL, NULL, err, sizeof err), 0);

    //  Refused here: not an image, nothing to send, too large.
    int before = s_sent_count ();
    assert_int_equal (rst_telegram_send_photo (tg, S_TOKEN, 111, "GIF89a....", 10, "x.gif", NULL,
                                               NULL, NULL, 0, NULL, NULL, err, sizeof err), -1);
    assert_non_null (strstr (err, "neither a PNG nor a JPEG"));
    assert_int_equal (rst_telegram_send_photo (tg, S_TOKEN, 111, NULL, 0, NULL, NULL, NULL, NULL, 0,
                                               NULL, NULL, err, sizeof err), -1);
    assert_int_equal (rst_telegram_send_photo (tg, S_TOKEN, 111, s_png,
                                               RST_TELEGRAM_PHOTO_MAX + 1, NULL, NULL, NULL, NULL, 0,
                                               NULL, NULL, err, sizeof err), -1);
    assert_int_equal (s_sent_count (), before);
    //  Refused by Telegram: a file_id it never gave out; a PNG without its header.
    rst_telegram_status_t st;
    assert_int_equal (rst_telegram_send_photo (tg, S_TOKEN, 111, NULL, 0, NULL, "AgACnope", NULL,
                                               NULL, 0, NULL, &st, err, sizeof err), -1);
    assert_int_equal (st.error_code, 400);
    assert_int_equal (rst_telegram_send_photo (tg, S_TOKEN, 111, s_png, 12, NULL, NULL, NULL, NULL,
                                               0, NULL, &st, err, sizeof err), -1);
    assert_non_null (strstr (err, "IMAGE_PROCESS_FAILED"));
    rst_telegram_destroy (&tg);
}

static void
test_callback_and_invite_links (void **state)
{
    (void) state;
    char err[512] = "";
    rst_telegram_t *tg = rst_telegram_new (s_fake.url, err, sizeof err);
    assert_non_null (tg);
    assert_int_equal (rst_telegram_answer_callback (tg, S_TOKEN, "5012345678901234567", "Gerando o PIX…",
                                                    NULL, err, sizeof err), 0);
    cJSON *root;
    cJSON *sent = s_last_sent (&root);
    assert_string_equal (s_str (sent, "method"), "answerCallbackQuery");
    assert_string_equal (s_str (sent, "callback_query_id"), "5012345678901234567");
    assert_string_equal (s_str (sent, "text"), "Gerando o PIX…");
    cJSON_Delete (root);

    //  The bot is not an admin of the group yet: Telegram refuses.
    char link[128];
    rst_telegram_status_t st;
    int64_t group = INT64_C (-1009876543210);
    int64_t expire = (int64_t) time (NULL) + 3600;
    assert_int_equal (rst_telegram_create_invite_link (tg, S_TOKEN, group, "pedido 42", expire, 1,
                                                       link, sizeof link, &st, err, sizeof err), -1);
    assert_non_null (strstr (err, "chat not found"));
    assert_int_equal (tg_fake_post (&s_fake, "/_fake/chats",
                                    "{\"chat_id\":-1009876543210,\"admins\":[7001]}"), 200);
    int rc = rst_telegram_create_invite_link (tg, S_TOKEN, group, "pedido 42", expire, 1, link,
                                              sizeof link, &st, err, sizeof err);
    if (rc)
        fail_msg ("%s", err);
    assert_non_null (strstr (link, "https://t.me/+"));
    sent = s_last_sent (&root);
    assert_string_equal (s_str (sent, "method"), "createChatInviteLink");
    assert_string_equal (s_str (sent, "invite_link"), link);
    s_assert_int (sent, "chat_id", group);
    s_assert_int (sent, "member_limit", 1);
    s_assert_int (sent, "expire_date", expire);
    cJSON_Delete (root);
    //  A buffer too small for the link is an error, not a cut link.
    char tiny[8];
    assert_int_equal (rst_telegram_create_invite_link (tg, S_TOKEN, group, NULL, 0, 0, tiny,
                                                       sizeof tiny, NULL, err, sizeof err), -1);
    assert_int_equal (tiny[0], 0);
    char other[128];
    assert_int_equal (rst_telegram_create_invite_link (tg, S_TOKEN, group, NULL, 0, 100000, other,
                                                       sizeof other, NULL, err, sizeof err), -1);
    assert_non_null (strstr (err, "member_limit"));

    //  Revoke: the fake's link state shows it.
    rc = rst_telegram_revoke_invite_link (tg, S_TOKEN, group, link, &st, err, sizeof err);
    if (rc)
        fail_msg ("%s", err);
    cJSON *links = tg_fake_get_json (&s_fake, "/_fake/links");
    int revoked = 0;
    cJSON *l;
    cJSON_ArrayForEach (l, links)
        if (strcmp (s_str (l, "invite_link"), link) == 0)
            revoked = cJSON_IsTrue (cJSON_GetObjectItem (l, "is_revoked"));
    cJSON_Delete (links);
    assert_true (revoked);
    assert_int_equal (rst_telegram_revoke_invite_link (tg, S_TOKEN, group, "https://t.me/+nope",
                                                       &st, err, sizeof err), -1);
    assert_int_equal (st.error_code, 400);
    rst_telegram_destroy (&tg);
}

static void
test_webhook (void **state)
{
    (void) state;
    char err[512] = "";
    rst_telegram_t *tg = rst_telegram_new (s_fake.url, err, sizeof err);
    assert_non_null (tg);
    const char *secret = "whSECRET_abc-123xyz";
    //  A secret with a character Telegram refuses never leaves, and is never quoted.
    assert_int_equal (rst_telegram_set_webhook (tg, S_TOKEN, "https://rastro.example/telegram/x",
                                                "bad secret!", NULL, err, sizeof err), -1);
    assert_non_null (strstr (err, "secret token"));
    assert_null (strstr (err, "bad secret"));
    assert_int_equal (rst_telegram_set_webhook (tg, S_TOKEN, "https://rastro.example/telegram/x",
                                                "", NULL, err, sizeof err), -1);
    int rc = rst_telegram_set_webhook (tg, S_TOKEN, "http://127.0.0.1:1/telegram/x", secret, NULL,
                                       err, sizeof err);
    if (rc)
        fail_msg ("%s", err);
    cJSON *info = NULL;
    assert_int_equal (rst_telegram_call (tg, S_TOKEN, "getWebhookInfo", NULL, 0, &info, NULL, err,
                                         sizeof err), 0);
    assert_string_equal (s_str (info, "url"), "http://127.0.0.1:1/telegram/x");
    s_assert_int (info, "max_connections", 40);
    cJSON *allowed = cJSON_GetObjectItem (info, "allowed_updates");
    assert_int_equal (cJSON_GetArraySize (allowed), 3);
    assert_string_equal (cJSON_GetArrayItem (allowed, 2)->valuestring, "chat_member");
    cJSON_Delete (info);
    //  While the webhook is set, getUpdates is a conflict.
    rst_telegram_status_t st;
    assert_int_equal (rst_telegram_call (tg, S_TOKEN, "getUpdates", NULL, 0, NULL, &st, err,
                                         sizeof err), -1);
    assert_int_equal (st.error_code, 409);
    //  The fake never shows the secret to anyone.
    char *calls = NULL;
    assert_int_equal (tg_fake_http (&s_fake, "GET", "/_fake/calls", NULL, &calls), 200);
    assert_non_null (strstr (calls, "setWebhook"));
    assert_null (strstr (calls, secret));
    free (calls);

    assert_int_equal (rst_telegram_delete_webhook (tg, S_TOKEN, 1, NULL, err, sizeof err), 0);
    assert_int_equal (rst_telegram_call (tg, S_TOKEN, "getWebhookInfo", NULL, 0, &info, NULL, err,
                                         sizeof err), 0);
    assert_string_equal (s_str (info, "url"), "");
    cJSON_Delete (info);
    rst_telegram_destroy (&tg);
}

static int
s_group_setup (void **state)
{
    (void) state;
    if (tg_fake_start (&s_fake, NULL))
        return -1;
    return tg_fake_add_bot (&s_fake, S_TOKEN, "loja_bot") == 200 ? 0 : -1;
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
        cmocka_unit_test (test_good_tokens),
        cmocka_unit_test (test_bad_tokens),
        cmocka_unit_test (test_client_lifecycle),
        cmocka_unit_test (test_transport_error_hides_token),
        cmocka_unit_test (test_send_message),
        cmocka_unit_test (test_send_message_refused),
        cmocka_unit_test (test_flood_wait),
        cmocka_unit_test (test_send_photo),
        cmocka_unit_test (test_callback_and_invite_links),
        cmocka_unit_test (test_webhook),
    };
    return cmocka_run_group_tests (tests, s_group_setup, s_group_teardown);
}
