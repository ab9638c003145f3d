/*  rst_tgupdate_test — reading Telegram updates into rst_tgupdate_t.

    The first test is the tour: the deep-link update of the reference
    (telegram-and-pix.md §1) gives the lead, the chat and the /start payload.
    Then a button press, a join through an invite link, the /start variants,
    UTF-8 repair and cutting, exact 52-bit ids, and one test per malformed
    shape (each must fail with a reason naming the field, never crash).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rst_tgupdate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Parses JSON into *U; returns rst_tgupdate_parse's answer. ERR gets the reason.
static int
s_parse (const char *json, rst_tgupdate_t *u, char *err, size_t errlen)
{
    cJSON *root = cJSON_Parse (json);
    if (!root)
        fail_msg ("test JSON does not parse: %s", json);
    err[0] = 0;
    int rc = rst_tgupdate_parse (root, u, err, errlen);
    cJSON_Delete (root);
    return rc;
}

static void
test_deep_link (void **state)
{
    (void) state;
    const char *json =
        "{\"update_id\":815000001,\"message\":{\"message_id\":5,\"date\":1767225600,"
        "\"from\":{\"id\":111,\"is_bot\":false,\"first_name\":\"Ana\",\"username\":\"ana\","
        "\"language_code\":\"pt-br\"},"
        "\"chat\":{\"id\":111,\"type\":\"private\",\"first_name\":\"Ana\"},"
        "\"text\":\"/start c_Zk3xQ9pL2aBc\",\"entities\":[{\"offset\":0,\"length\":6,"
        "\"type\":\"bot_command\"}]}}";
    rst_tgupdate_t u;
    char err[256];
    assert_int_equal (s_parse (json, &u, err, sizeof err), 0);
    assert_int_equal (u.update_id, 815000001);
    assert_int_equal (u.kind, RST_TGU_MESSAGE);
    assert_int_equal (u.chat_id, 111);
    assert_string_equal (u.chat_type, "private");
    assert_int_equal (u.user_id, 111);
    assert_int_equal (u.is_bot, 0);
    assert_string_equal (u.first_name, "Ana");
    assert_string_equal (u.last_name, "");
    assert_string_equal (u.username, "ana");
    assert_string_equal (u.language, "pt-br");
    assert_int_equal (u.message_id, 5);
    assert_int_equal (u.date, 1767225600);
    assert_string_equal (u.text, "/start c_Zk3xQ9pL2aBc");
    assert_int_equal (u.is_start, 1);
    assert_string_equal (u.start_payload, "c_Zk3xQ9pL2aBc");
    assert_string_equal (u.callback_id, "");
    assert_string_equal (u.member_status, "");
}

static void
test_callback_query (void **state)
{
    (void) state;
    const char *json =
        "{\"update_id\":815000002,\"callback_query\":{\"id\":\"5012345678901234567\","
        "\"chat_instance\":\"-54321\",\"from\":{\"id\":111,\"is_bot\":false,\"first_name\":\"Ana\"},"
        "\"data\":\"buy:42\",\"message\":{\"message_id\":6,\"date\":1767225610,"
        "\"chat\":{\"id\":111,\"type\":\"private\"},\"text\":\"Oferta…\"}}}";
    rst_tgupdate_t u;
    char err[256];
    assert_int_equal (s_parse (json, &u, err, sizeof err), 0);
    assert_int_equal (u.kind, RST_TGU_CALLBACK);
    assert_int_equal (u.update_id, 815000002);
    assert_string_equal (u.callback_id, "5012345678901234567");
    assert_string_equal (u.callback_data, "buy:42");
    assert_int_equal (u.user_id, 111);
    assert_string_equal (u.first_name, "Ana");
    assert_int_equal (u.chat_id, 111);
    assert_string_equal (u.chat_type, "private");
    assert_int_equal (u.message_id, 6);
    assert_int_equal (u.date, 1767225610);
    assert_string_equal (u.text, "");           //  the bot's own message is not copied
    assert_int_equal (u.is_start, 0);

    //  Too old for Telegram to include the message: no chat, still answerable.
    assert_int_equal (s_parse ("{\"update_id\":9,\"callback_query\":{\"id\":\"77\","
                               "\"from\":{\"id\":5},\"data\":\"x\"}}", &u, err, sizeof err), 0);
    assert_int_equal (u.chat_id, 0);
    assert_string_equal (u.callback_id, "77");
    //  Data over 64 bytes is not ours: left empty, not cut.
    char json65[256];
    snprintf (json65, sizeof json65, "{\"update_id\":9,\"callback_query\":{\"id\":\"77\","
              "\"from\":{\"id\":5},\"data\":\"%065d\"}}", 1);
    assert_int_equal (s_parse (json65, &u, err, sizeof err), 0);
    assert_string_equal (u.callback_data, "");
    snprintf (json65, sizeof json65, "{\"update_id\":9,\"callback_query\":{\"id\":\"77\","
              "\"from\":{\"id\":5},\"data\":\"%064d\"}}", 1);
    assert_int_equal (s_parse (json65, &u, err, sizeof err), 0);
    assert_int_equal (strlen (u.callback_data), 64);
}

static void
test_chat_member (void **state)
{
    (void) state;
    const char *json =
        "{\"update_id\":815000003,\"chat_member\":{\"chat\":{\"id\":-1009876543210,"
        "\"type\":\"supergroup\",\"title\":\"VIP\"},\"from\":{\"id\":111,\"is_bot\":false,"
        "\"first_name\":\"Ana\"},\"date\":1767225700,"
        "\"old_chat_member\":{\"user\":{\"id\":111,\"is_bot\":false,\"first_name\":\"Ana\"},"
        "\"status\":\"left\"},"
        "\"new_chat_member\":{\"user\":{\"id\":111,\"is_bot\":false,\"first_name\":\"Ana\"},"
        "\"status\":\"member\"},"
        "\"invite_link\":{\"invite_link\":\"https://t.me/+AbCdEfGh12345678\",\"creator\":"
        "{\"id\":7001,\"is_bot\":true,\"first_name\":\"Loja\"},\"creates_join_request\":false,"
        "\"is_primary\":false,\"is_revoked\":false,\"member_limit\":1}}}";
    rst_tgupdate_t u;
    char err[256];
    assert_int_equal (s_parse (json, &u, err, sizeof err), 0);
    assert_int_equal (u.kind, RST_TGU_CHAT_MEMBER);
    assert_true (u.chat_id == INT64_C (-1009876543210));
    assert_string_equal (u.chat_type, "supergroup");
    assert_int_equal (u.user_id, 111);
    assert_int_equal (u.date, 1767225700);
    assert_string_equal (u.member_status, "member");
    assert_int_equal (u.member_user_id, 111);
    assert_string_equal (u.invite_link, "https://t.me/+AbCdEfGh12345678");
    //  Without a link (an admin added the user): fine, link empty.
    assert_int_equal (s_parse ("{\"update_id\":4,\"chat_member\":{\"chat\":{\"id\":-5},"
                               "\"new_chat_member\":{\"status\":\"left\",\"user\":{\"id\":8}}}}",
                               &u, err, sizeof err), 0);
    assert_string_equal (u.member_status, "left");
    assert_string_equal (u.invite_link, "");
    assert_int_equal (u.user_id, 0);
}

static void
test_other_kinds (void **state)
{
    (void) state;
    rst_tgupdate_t u;
    char err[256];
    static const char *others[] = {
        "{\"update_id\":1,\"edited_message\":{\"message_id\":1,\"chat\":{\"id\":1}}}",
        "{\"update_id\":2,\"my_chat_member\":{\"chat\":{\"id\":1}}}",
        "{\"update_id\":3,\"channel_post\":\"whatever\"}",
        "{\"update_id\":4}",
        NULL,
    };
    for (int i = 0; others[i]; i++) {
        assert_int_equal (s_parse (others[i], &u, err, sizeof err), 0);
        assert_int_equal (u.kind, RST_TGU_OTHER);
        assert_int_equal (u.update_id, i + 1);
        assert_int_equal (u.chat_id, 0);
    }
}

//  The /start command: with or without @bot, with a valid, invalid or no payload.
static void
test_start_variants (void **state)
{
    (void) state;
    char p64[65], p65[66];
    memset (p64, 'a', 64);
    p64[64] = 0;
    memset (p65, 'b', 65);
    p65[65] = 0;
    char t64[128], t65[128];
    snprintf (t64, sizeof t64, "/start %s", p64);
    snprintf (t65, sizeof t65, "/start %s", p65);
    const struct {
        const char *text;
        int is_start;
        const char *payload;
    } cases[] = {
        {"/start", 1, ""},
        {"/start@loja_bot", 1, ""},
        {"/start@loja_bot c_x-Y_9", 1, "c_x-Y_9"},
        {"/start abc", 1, "abc"},
        {t64, 1, p64},
        {t65, 1, ""},                   //  too long: no payload
        {"/start abc def", 1, ""},
        {"/start abc!", 1, ""},
        {"/start ", 1, ""},
        {"/start  abc", 1, ""},
        {"/start ação", 1, ""},
        {"/startx", 0, ""},
        {"/start@ abc", 0, ""},
        {"/start@bot!", 0, ""},
        {"hello /start abc", 0, ""},
        {"/Start abc", 0, ""},
        {"", 0, ""},
        {NULL, 0, NULL},
    };
    for (int i = 0; cases[i].text; i++) {
        cJSON *root = cJSON_CreateObject ();
        cJSON_AddNumberToObject (root, "update_id", 10);
        cJSON *msg = cJSON_AddObjectToObject (root, "message");
        cJSON_AddNumberToObject (msg, "message_id", 1);
        cJSON_AddNumberToObject (cJSON_AddObjectToObject (msg, "chat"), "id", 5);
        cJSON_AddStringToObject (msg, "text", cases[i].text);
        rst_tgupdate_t u;
        char err[256];
        assert_int_equal (rst_tgupdate_parse (root, &u, err, sizeof err), 0);
        if (u.is_start != cases[i].is_start || strcmp (u.start_payload, cases[i].payload))
            fail_msg ("'%s': is_start %d payload '%s'", cases[i].text, u.is_start,
                      u.start_payload);
        assert_string_equal (u.text, cases[i].text);
        cJSON_Delete (root);
    }
}

//  Every byte that does not start a valid sequence becomes U+FFFD.
static void
test_utf8_repair (void **state)
{
    (void) state;
    const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"plain", "plain"},
        {"Olá, São Paulo € 𝄞", "Olá, São Paulo € 𝄞"},
        {"a\x80z", "a\xEF\xBF\xBDz"},                               //  stray continuation
        {"\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"},                   //  overlong '/'
        {"\xE0\x80\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},   //  overlong, 3 bytes
        {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},   //  surrogate
        {"\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},  //  > U+10FFFF
        {"x\xE2\x82", "x\xEF\xBF\xBD\xEF\xBF\xBD"},                 //  cut at the end
        {"\xFF", "\xEF\xBF\xBD"},
        {NULL, NULL},
    };
    char out[64];
    for (int i = 0; cases[i].in; i++) {
        size_t n = rst_tgupdate_copy_utf8 (out, sizeof out, cases[i].in);
        if (strcmp (out, cases[i].out))
            fail_msg ("case %d: got '%s'", i, out);
        assert_int_equal (n, strlen (cases[i].out));
    }
    //  Cuts end on a character boundary, never inside one.
    assert_int_equal (rst_tgupdate_copy_utf8 (out, 4, "ação"), 3);        //  "a" + "ç"
    assert_string_equal (out, "aç");
    assert_int_equal (rst_tgupdate_copy_utf8 (out, 3, "ação"), 1);
    assert_string_equal (out, "a");
    assert_int_equal (rst_tgupdate_copy_utf8 (out, 1, "abc"), 0);
    assert_string_equal (out, "");
    assert_int_equal (rst_tgupdate_copy_utf8 (out, 3, "a\xFF"), 1);       //  FFFD does not fit
    assert_int_equal (rst_tgupdate_copy_utf8 (out, sizeof out, NULL), 0);

    //  Inside an update: text with a bad byte, names cut at their buffer.
    char json[512];
    char name[201];
    memset (name, 'n', 200);
    name[200] = 0;
    snprintf (json, sizeof json, "{\"update_id\":1,\"message\":{\"message_id\":1,"
              "\"chat\":{\"id\":2},\"from\":{\"id\":3,\"first_name\":\"%s\"},"
              "\"text\":\"oi \xFF tudo\"}}", name);
    rst_tgupdate_t u;
    char err[256];
    cJSON *root = cJSON_Parse (json);
    assert_non_null (root);
    assert_int_equal (rst_tgupdate_parse (root, &u, err, sizeof err), 0);
    cJSON_Delete (root);
    assert_string_equal (u.text, "oi \xEF\xBF\xBD tudo");
    assert_int_equal (strlen (u.first_name), 128);
}

//  Long texts: cut at 4096 bytes on a character boundary.
static void
test_long_text (void **state)
{
    (void) state;
    static const struct {
        const char *ch;
        size_t expected;            //  bytes kept
    } cases[] = {
        {"a", 4096}, {"é", 4096}, {"€", 4095}, {"𝄞", 4096}, {NULL, 0},
    };
    for (int i = 0; cases[i].ch; i++) {
        size_t clen = strlen (cases[i].ch);
        size_t n = 6000 / clen;
        char *text = malloc (n * clen + 1);
        assert_non_null (text);
        for (size_t k = 0; k < n; k++)
            memcpy (text + k * clen, cases[i].ch, clen);
        text[n * clen] = 0;
        cJSON *root = cJSON_CreateObject ();
        cJSON_AddNumberToObject (root, "update_id", 1);
        cJSON *msg = cJSON_AddObjectToObject (root, "message");
        cJSON_AddNumberToObject (msg, "message_id", 1);
        cJSON_AddNumberToObject (cJSON_AddObjectToObject (msg, "chat"), "id", 5);
        cJSON_AddStringToObject (msg, "text", text);
        rst_tgupdate_t u;
        char err[256];
        assert_int_equal (rst_tgupdate_parse (root, &u, err, sizeof err), 0);
        assert_int_equal (strlen (u.text), cases[i].expected);
        assert_memory_equal (u.text, text, cases[i].expected);
        cJSON_Delete (root);
        free (text);
    }
}

//  Ids need up to 52 bits: they come through exactly.
static void
test_big_ids (void **state)
{
    (void) state;
    rst_tgupdate_t u;
    char err[256];
    assert_int_equal (s_parse ("{\"update_id\":4503599627370495,\"message\":{\"message_id\":"
                               "2147483648,\"chat\":{\"id\":-1002345678901234,\"type\":"
                               "\"supergroup\"},\"from\":{\"id\":7000000001}}}", &u, err,
                               sizeof err), 0);
    assert_true (u.update_id == INT64_C (4503599627370495));
    assert_true (u.message_id == INT64_C (2147483648));
    assert_true (u.chat_id == INT64_C (-1002345678901234));
    assert_true (u.user_id == INT64_C (7000000001));
}

static void
test_malformed (void **state)
{
    (void) state;
    static const struct {
        const char *json;
        const char *says;
    } bad[] = {
        {"[]", "not a JSON object"},
        {"\"text\"", "not a JSON object"},
        {"{}", "update_id: missing"},
        {"{\"message\":{}}", "update_id: missing"},
        {"{\"update_id\":\"1\"}", "update_id: not an integer"},
        {"{\"update_id\":1.5}", "update_id: not an integer"},
        {"{\"update_id\":1e300}", "update_id: not an integer"},
        {"{\"update_id\":9007199254740992}", "update_id: not an integer"},
        {"{\"update_id\":-1}", "update_id: negative"},
        {"{\"update_id\":true}", "update_id: not an integer"},
        {"{\"update_id\":1,\"message\":[]}", "message: not an object"},
        {"{\"update_id\":1,\"message\":{\"chat\":{\"id\":1}}}", "message.message_id: missing"},
        {"{\"update_id\":1,\"message\":{\"message_id\":1}}", "message.chat: missing"},
        {"{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":\"5\"}}}",
         "message.chat.id: not an integer"},
        {"{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{}}}", "message.chat.id: missing"},
        {"{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":1,\"type\":2}}}",
         "message.chat.type: not a string"},
        {"{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":1},\"from\":{}}}",
         "message.from.id: missing"},
        {"{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":1},\"from\":7}}",
         "message.from: not an object"},
        {"{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":1},\"from\":{\"id\":1,"
         "\"is_bot\":\"no\"}}}", "message.from.is_bot: not a boolean"},
        {"{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":1},\"from\":{\"id\":1,"
         "\"first_name\":null}}}", "message.from.first_name: not a string"},
        {"{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":1},\"text\":5}}",
         "message.text: not a string"},
        {"{\"update_id\":1,\"message\":{\"message_id\":1,\"date\":\"today\",\"chat\":{\"id\":1}}}",
         "message.date: not an integer"},
        {"{\"update_id\":1,\"callback_query\":{\"from\":{\"id\":1}}}", "callback_query.id: missing"},
        {"{\"update_id\":1,\"callback_query\":{\"id\":5,\"from\":{\"id\":1}}}",
         "callback_query.id: not a string"},
        {"{\"update_id\":1,\"callback_query\":{\"id\":\"\",\"from\":{\"id\":1}}}",
         "callback_query.id: empty"},
        {"{\"update_id\":1,\"callback_query\":{\"id\":"
         "\"12345678901234567890123456789012345678901234567890123456789012345\",\"from\":{\"id\":1}}}",
         "longer than 64"},
        {"{\"update_id\":1,\"callback_query\":{\"id\":\"50 1\",\"from\":{\"id\":1}}}",
         "callback_query.id: not printable ASCII"},
        {"{\"update_id\":1,\"callback_query\":{\"id\":\"5\xC3\xA9\",\"from\":{\"id\":1}}}",
         "callback_query.id: not printable ASCII"},
        {"{\"update_id\":1,\"callback_query\":{\"id\":\"5\"}}", "callback_query.from: missing"},
        {"{\"update_id\":1,\"callback_query\":{\"id\":\"5\",\"from\":{\"id\":1},\"data\":[]}}",
         "callback_query.data: not a string"},
        {"{\"update_id\":1,\"callback_query\":{\"id\":\"5\",\"from\":{\"id\":1},\"message\":"
         "{\"chat\":{\"id\":{}}}}}", "callback_query.message.chat.id: not an integer"},
        {"{\"update_id\":1,\"chat_member\":{\"chat\":{\"id\":1}}}",
         "chat_member.new_chat_member: missing"},
        {"{\"update_id\":1,\"chat_member\":{\"chat\":{\"id\":1},\"new_chat_member\":{\"user\":"
         "{\"id\":2}}}}", "chat_member.new_chat_member.status: missing"},
        {"{\"update_id\":1,\"chat_member\":{\"chat\":{\"id\":1},\"new_chat_member\":{\"status\":"
         "\"member\",\"user\":{}}}}", "chat_member.new_chat_member.user.id: missing"},
        {"{\"update_id\":1,\"chat_member\":{\"chat\":{\"id\":1},\"new_chat_member\":{\"status\":"
         "\"member\",\"user\":{\"id\":2}},\"invite_link\":\"x\"}}",
         "chat_member.invite_link: not an object"},
        {NULL, NULL},
    };
    for (int i = 0; bad[i].json; i++) {
        rst_tgupdate_t u;
        char err[256];
        if (s_parse (bad[i].json, &u, err, sizeof err) != -1)
            fail_msg ("#%d was accepted: %s", i, bad[i].json);
        if (!strstr (err, bad[i].says))
            fail_msg ("#%d: '%s' does not say '%s'", i, err, bad[i].says);
        //  Nothing half-read is left behind.
        assert_int_equal (u.chat_id, 0);
        assert_int_equal (u.user_id, 0);
        assert_string_equal (u.text, "");
    }
    rst_tgupdate_t u;
    char err[64];
    assert_int_equal (rst_tgupdate_parse (NULL, &u, err, sizeof err), -1);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_deep_link),
        cmocka_unit_test (test_callback_query),
        cmocka_unit_test (test_chat_member),
        cmocka_unit_test (test_other_kinds),
        cmocka_unit_test (test_start_variants),
        cmocka_unit_test (test_utf8_repair),
        cmocka_unit_test (test_long_text),
        cmocka_unit_test (test_big_ids),
        cmocka_unit_test (test_malformed),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
