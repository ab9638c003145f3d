/*  fuzz_api_query — the API's request parsers on arbitrary bytes: query
    parameters (percent-decoding, UTF-8 checks, small and large buffers),
    the session cookie, the router (path patterns and :id captures), JSON
    bodies and the Host header behind /me's ws_url. */
#include "rst_api_server.h"
#include "rst_auth.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *s = malloc (size + 1);
    if (!s)
        return 0;
    memcpy (s, data, size);
    s[size] = 0;        //  the strings a job holds are NUL-terminated

    rst_api_req_t req = {.method = "GET", .path = s, .query = s, .content_type = ""};
    static const char *keys[] = {"range", "from", "to", "pool", "bot", "limit", "cursor", ""};
    char small[4], big[512];
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int rc = rst_api_query (&req, keys[i], big, sizeof big);
        if (rc == 1 && strlen (big) >= sizeof big)
            abort ();
        rc = rst_api_query (&req, keys[i], small, sizeof small);
        if (rc == 1 && strlen (small) >= sizeof small)
            abort ();
    }
    const char *v;
    size_t n;
    if (rst_api_cookie (s, size, &v, &n) && (v < s || v + n > s + size))
        abort ();

    int64_t ids[RST_API_MAX_IDS];
    size_t nids;
    int status;
    char allow[64];
    const rst_api_route_t *route = rst_api_match ("GET", s, ids, &nids, &status, allow, sizeof allow);
    if (route && nids > RST_API_MAX_IDS)
        abort ();
    rst_api_match ("POST", s, ids, &nids, &status, allow, sizeof allow);
    rst_api_pattern_match ("/a/:id/b/:id", s, ids, &nids);

    req.body = s;
    req.body_len = size;
    rst_api_res_t res = {0};
    cJSON *obj = rst_api_body_object (&req, &res);
    cJSON_Delete (obj);
    cJSON_Delete (res.json);

    char url[512];
    rst_auth_ws_url (s, (int) (size & 1), url, sizeof url);
    free (s);
    return 0;
}
