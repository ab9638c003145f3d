/*  rst_api_test — the API's pure parts: route patterns and the router over
    the real route tables, query decoding, JSON bodies, error shapes, the
    session cookie, --list-routes output and /me's ws_url. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rst_api_server.h"
#include "rst_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rst_api_req_t
s_req_query (const char *query)
{
    rst_api_req_t req = {.method = "GET", .path = "/x", .query = query, .content_type = ""};
    return req;
}

static rst_api_req_t
s_req_body (const char *body)
{
    rst_api_req_t req = {.method = "POST", .path = "/x", .query = "", .content_type = ""};
    req.body = body;
    req.body_len = body ? strlen (body) : 0;
    return req;
}

//  A tour: a path below /api/v1 finds its route and its :id captures; the
//  handler reads its query parameters decoded and answers JSON errors.
static void
test_tour (void **state)
{
    int64_t ids[RST_API_MAX_IDS];
    size_t nids;
    assert_true (rst_api_pattern_match ("/bots/:id/leads", "/bots/42/leads", ids, &nids));
    assert_int_equal (nids, 1);
    assert_int_equal (ids[0], 42);

    int status;
    const rst_api_route_t *route = rst_api_match ("GET", "/me", ids, &nids, &status, NULL, 0);
    assert_non_null (route);
    assert_string_equal (route->pattern, "/me");
    assert_int_equal (status, 200);

    rst_api_req_t req = s_req_query ("range=custom&from=2026-01-01&name=Jo%C3%A3o+Silva");
    char out[64];
    assert_int_equal (rst_api_query (&req, "range", out, sizeof out), 1);
    assert_string_equal (out, "custom");
    assert_int_equal (rst_api_query (&req, "name", out, sizeof out), 1);
    assert_string_equal (out, "João Silva");
    assert_int_equal (rst_api_query (&req, "to", out, sizeof out), 0);
    assert_string_equal (out, "");

    rst_api_res_t res = {0};
    assert_int_equal (rst_api_error (&res, 404, "not found"), 0);
    assert_int_equal (res.status, 404);
    char *text = cJSON_PrintUnformatted (res.json);
    assert_string_equal (text, "{\"error\":\"not found\"}");
    free (text);
    cJSON_Delete (res.json);
}

static void
test_patterns (void **state)
{
    int64_t ids[RST_API_MAX_IDS];
    size_t nids;
    assert_true (rst_api_pattern_match ("/pools", "/pools", ids, &nids));
    assert_int_equal (nids, 0);
    assert_false (rst_api_pattern_match ("/pools", "/pools/", ids, &nids));
    assert_false (rst_api_pattern_match ("/pools", "/pool", ids, &nids));
    assert_false (rst_api_pattern_match ("/pools", "/poolsx", ids, &nids));
    assert_false (rst_api_pattern_match ("/pools", "pools", ids, &nids));
    assert_false (rst_api_pattern_match ("/pools", "", ids, &nids));
    assert_false (rst_api_pattern_match ("/pools/:id", "/pools", ids, &nids));
    assert_false (rst_api_pattern_match ("/pools/:id", "/pools/", ids, &nids));
    assert_false (rst_api_pattern_match ("/pools/:id", "//pools/1", ids, &nids));
    assert_false (rst_api_pattern_match ("/pools/:id", "/pools/0", ids, &nids));
    assert_false (rst_api_pattern_match ("/pools/:id", "/pools/007", ids, &nids));
    assert_false (rst_api_pattern_match ("/pools/:id", "/pools/-1", ids, &nids));
    assert_false (rst_api_pattern_match ("/pools/:id", "/pools/1a", ids, &nids));
    assert_false (rst_api_pattern_match ("/pools/:id", "/pools/%31", ids, &nids));
    assert_false (rst_api_pattern_match ("/pools/:id", "/pools/1/", ids, &nids));
    assert_false (rst_api_pattern_match ("/pools/:id", "/pools/1234567890123456789", ids, &nids));
    assert_true (rst_api_pattern_match ("/pools/:id", "/pools/123456789012345678", ids, &nids));
    assert_int_equal (ids[0], 123456789012345678LL);
    assert_true (rst_api_pattern_match ("/a/:id/b/:id", "/a/7/b/9", ids, &nids));
    assert_int_equal (nids, 2);
    assert_int_equal (ids[0], 7);
    assert_int_equal (ids[1], 9);
    assert_false (rst_api_pattern_match ("/a/:id/b/:id", "/a/7/c/9", ids, &nids));
    //  More captures than RST_API_MAX_IDS never match.
    assert_true (rst_api_pattern_match ("/:id/:id/:id/:id", "/1/2/3/4", ids, &nids));
    assert_false (rst_api_pattern_match ("/:id/:id/:id/:id/:id", "/1/2/3/4/5", ids, &nids));
}

static void
test_router (void **state)
{
    int64_t ids[RST_API_MAX_IDS];
    size_t nids;
    int status;
    char allow[64];
    //  Methods: HEAD is routed as GET; a known path with another method is 405.
    assert_non_null (rst_api_match ("HEAD", "/me", ids, &nids, &status, allow, sizeof allow));
    assert_null (rst_api_match ("POST", "/me", ids, &nids, &status, allow, sizeof allow));
    assert_int_equal (status, 405);
    assert_string_equal (allow, "GET");
    assert_null (rst_api_match ("GET", "/login", ids, &nids, &status, allow, sizeof allow));
    assert_int_equal (status, 405);
    assert_string_equal (allow, "POST");
    assert_null (rst_api_match ("GET", "/nothing/here", ids, &nids, &status, allow, sizeof allow));
    assert_int_equal (status, 404);
    assert_string_equal (allow, "");
    assert_null (rst_api_match ("get", "/me", ids, &nids, &status, NULL, 0));
    assert_int_equal (status, 405);
    const rst_api_route_t *login = rst_api_match ("POST", "/login", ids, &nids, &status, NULL, 0);
    assert_non_null (login);
    assert_true (login->flags & RST_API_PUBLIC);
    const rst_api_route_t *logout = rst_api_match ("POST", "/logout", ids, &nids, &status, NULL, 0);
    assert_non_null (logout);
    assert_false (logout->flags & RST_API_PUBLIC);
}

//  Every line of --list-routes is "METHOD /api/v1/PATTERN FLAGS" and routes
//  back to itself; no two routes share a method and pattern.
static void
test_list_routes (void **state)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    assert_non_null (out);
    rst_api_list_routes (out);
    fclose (out);
    assert_non_null (strstr (text, "POST /api/v1/login public\n"));
    assert_non_null (strstr (text, "POST /api/v1/logout session,csrf\n"));
    assert_non_null (strstr (text, "GET /api/v1/me session\n"));
    size_t lines = 0;
    char seen[256][160];
    for (char *line = strtok (text, "\n"); line; line = strtok (NULL, "\n")) {
        char method[16], pattern[128], flags[32];
        assert_int_equal (sscanf (line, "%15s %127s %31s", method, pattern, flags), 3);
        assert_int_equal (strncmp (pattern, "/api/v1/", 8), 0);
        for (size_t i = 0; i < lines && i < 256; i++)
            assert_string_not_equal (seen[i], line);
        if (lines < 256)
            snprintf (seen[lines], sizeof seen[lines], "%s", line);
        lines++;
        //  With each :id made 5, the path routes to a route with this method.
        char path[160];
        size_t n = 0;
        for (const char *p = pattern + 7; *p && n + 1 < sizeof path;)
            if (!strncmp (p, ":id", 3))
                path[n++] = '5', p += 3;
            else
                path[n++] = *p++;
        path[n] = 0;
        int64_t ids[RST_API_MAX_IDS];
        size_t nids;
        int status;
        const rst_api_route_t *r = rst_api_match (method, path, ids, &nids, &status, NULL, 0);
        assert_non_null (r);
        assert_string_equal (r->method, method);
        for (size_t i = 0; i < nids; i++)
            assert_int_equal (ids[i], 5);
        int is_write = strcmp (method, "GET") != 0;
        assert_string_equal (flags, (r->flags & RST_API_PUBLIC) ? "public"
                                    : is_write                  ? "session,csrf"
                                                                : "session");
    }
    assert_true (lines >= 3);
    free (text);
}

static void
test_query (void **state)
{
    char out[8];
    rst_api_req_t req = s_req_query ("a=1&a=2&b=&c&%62%62=x&long=123456789&pct=%zz&cut=%4&bad=%C3%28"
                                     "&nul=a%00b&over=%F4%90%80%80&sur=%ED%A0%80&ok=%E2%82%AC");
    assert_int_equal (rst_api_query (&req, "a", out, sizeof out), 1);
    assert_string_equal (out, "1");                 //  the first occurrence wins
    assert_int_equal (rst_api_query (&req, "b", out, sizeof out), 1);
    assert_string_equal (out, "");
    assert_int_equal (rst_api_query (&req, "c", out, sizeof out), 1);
    assert_string_equal (out, "");
    assert_int_equal (rst_api_query (&req, "bb", out, sizeof out), 1);     //  key decoded too
    assert_string_equal (out, "x");
    assert_int_equal (rst_api_query (&req, "long", out, sizeof out), -1);  //  8 bytes need 9
    assert_int_equal (rst_api_query (&req, "pct", out, sizeof out), -1);
    assert_int_equal (rst_api_query (&req, "cut", out, sizeof out), -1);
    assert_int_equal (rst_api_query (&req, "bad", out, sizeof out), -1);   //  not UTF-8
    assert_int_equal (rst_api_query (&req, "nul", out, sizeof out), -1);
    assert_int_equal (rst_api_query (&req, "over", out, sizeof out), -1);  //  > U+10FFFF
    assert_int_equal (rst_api_query (&req, "sur", out, sizeof out), -1);   //  surrogate
    assert_int_equal (rst_api_query (&req, "ok", out, sizeof out), 1);
    assert_string_equal (out, "€");
    assert_int_equal (rst_api_query (&req, "zz", out, sizeof out), 0);
    char small[2];
    rst_api_req_t one = s_req_query ("k=v");
    assert_int_equal (rst_api_query (&one, "k", small, sizeof small), 1);
    assert_string_equal (small, "v");
    rst_api_req_t none = s_req_query ("");
    assert_int_equal (rst_api_query (&none, "k", out, sizeof out), 0);
    rst_api_req_t null_query = s_req_query (NULL);
    assert_int_equal (rst_api_query (&null_query, "k", out, sizeof out), 0);
}

static void
test_body_object (void **state)
{
    const char *bad[] = {NULL, "", "nope", "[1]", "\"s\"", "{\"a\":1} x", "{\"a\":", "3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rst_api_req_t req = s_req_body (bad[i]);
        rst_api_res_t res = {0};
        assert_null (rst_api_body_object (&req, &res));
        assert_int_equal (res.status, 400);
        assert_true (cJSON_IsString (cJSON_GetObjectItem (res.json, "error")));
        cJSON_Delete (res.json);
    }
    rst_api_req_t req = s_req_body (" {\"name\":\"x\"}\r\n ");
    rst_api_res_t res = {0};
    cJSON *obj = rst_api_body_object (&req, &res);
    assert_non_null (obj);
    assert_string_equal (cJSON_GetObjectItem (obj, "name")->valuestring, "x");
    assert_int_equal (res.status, 0);
    cJSON_Delete (obj);
    //  The body need not be NUL-terminated.
    char raw[] = {'{', '}', 'X'};
    rst_api_req_t cut = {.body = raw, .body_len = 2};
    obj = rst_api_body_object (&cut, &res);
    assert_non_null (obj);
    cJSON_Delete (obj);
}

static void
test_answers (void **state)
{
    rst_api_res_t res = {0};
    assert_int_equal (rst_api_ok (&res, NULL), -1);
    assert_int_equal (rst_api_ok (&res, cJSON_CreateObject ()), 0);
    assert_int_equal (res.status, 200);
    //  An error replaces a body set before, and escapes its message.
    rst_api_error (&res, 400, "bad \"range\"");
    char *text = cJSON_PrintUnformatted (res.json);
    assert_string_equal (text, "{\"error\":\"bad \\\"range\\\"\"}");
    free (text);
    cJSON_Delete (res.json);
}

static void
test_cookie (void **state)
{
    const char *v;
    size_t n;
    const char *h = "theme=dark; rastro_session=abc_DEF-1; other=x";
    assert_int_equal (rst_api_cookie (h, strlen (h), &v, &n), 1);
    assert_int_equal (n, 9);
    assert_memory_equal (v, "abc_DEF-1", 9);
    h = "xrastro_session=nope; rastro_sessionx=no";
    assert_int_equal (rst_api_cookie (h, strlen (h), &v, &n), 0);
    h = "rastro_session=";
    assert_int_equal (rst_api_cookie (h, strlen (h), &v, &n), 1);
    assert_int_equal (n, 0);
    assert_int_equal (rst_api_cookie ("", 0, &v, &n), 0);
}

static void
test_ws_url (void **state)
{
    char url[256];
    rst_auth_ws_url ("painel.example.org:8080", 0, url, sizeof url);
    assert_string_equal (url, "ws://painel.example.org:8090/ws");
    rst_auth_ws_url ("painel.example.org", 1, url, sizeof url);
    assert_string_equal (url, "wss://painel.example.org:8090/ws");
    rst_auth_ws_url ("[::1]:8080", 0, url, sizeof url);
    assert_string_equal (url, "ws://[::1]:8090/ws");
    rst_auth_ws_url ("evil\"/><script>:1", 0, url, sizeof url);
    assert_string_equal (url, "ws://localhost:8090/ws");
    rst_auth_ws_url ("[::1", 0, url, sizeof url);
    assert_string_equal (url, "ws://localhost:8090/ws");
    rst_auth_ws_url (NULL, 0, url, sizeof url);
    assert_string_equal (url, "ws://localhost:8090/ws");
    rst_auth_ws_url ("", 0, url, sizeof url);
    assert_string_equal (url, "ws://localhost:8090/ws");
    //  With the config: its port, or its public URL as is.
    rst_config_t cfg = {.ws_port = 9001};
    rst_auth_configure (&cfg);
    rst_auth_ws_url ("h:1", 0, url, sizeof url);
    assert_string_equal (url, "ws://h:9001/ws");
    snprintf (cfg.ws_public_url, sizeof cfg.ws_public_url, "wss://live.example.org/ws");
    rst_auth_ws_url ("h:1", 0, url, sizeof url);
    assert_string_equal (url, "wss://live.example.org/ws");
    rst_auth_configure (NULL);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_tour),        cmocka_unit_test (test_patterns),
        cmocka_unit_test (test_router),      cmocka_unit_test (test_list_routes),
        cmocka_unit_test (test_query),       cmocka_unit_test (test_body_object),
        cmocka_unit_test (test_answers),     cmocka_unit_test (test_cookie),
        cmocka_unit_test (test_ws_url),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
