/*  rst_meta — Meta Conversions API payloads and replies (reference/meta-capi.md).

    Role: the one place that knows Meta's wire format. The enricher calls
    rst_meta_hash / rst_meta_event_json to build each event object; the
    sender calls rst_meta_body to wrap a batch of them and
    rst_meta_classify to decide what a reply means. Everything here is pure
    (no I/O, no global state), so it is tested against the reference's
    vectors in tests/unit/rst_meta_test.c.

    Normalisation (reference §5), per key:
      em        trim, lowercase (ASCII)
      ph        digits only, '+' / leading "00" / trunk zeros dropped; a
                Brazilian number without country code (10 digits whose third
                is 2-5, or 11 whose third is 9) gets "55" in front; anything
                else is taken to carry its country code already
      fn, ln    lowercase (ASCII and Latin-1 letters), only letters kept;
                UTF-8 letters stay (valéry)
      ct, st    lowercase letters only, Latin-1 accents folded to a-z
                (São Paulo → saopaulo)
      zp        lowercase letters and digits only; US ZIP+4 → first 5
      ge        m / f (also male, female, masculino, feminino)
      db        YYYYMMDD from YYYYMMDD, YYYY-MM-DD, or D/M/YYYY and M/D/YYYY
                (M/D when both ≤ 12, as in Meta's own example)
      country   two letters, lowercase
      external_id  trimmed, otherwise untouched
    A value that already is 64 hex digits was hashed upstream: it is
    lowercased and never hashed again.

    Classification (reference §7): a reply is ACCEPTED only when it is a 2xx
    whose body is a JSON object with a numeric events_received; everything
    else that might succeed later (transport errors, 5xx, malformed bodies,
    is_transient, codes 1, 2, 4, 17, 32, 341, 368, 613, 80000-80014) is
    RETRY; the permanent codes are REJECTED, and code 100 (but not 100/33,
    a pixel the token cannot see) asks for a split. An unknown code is
    RETRY on 5xx and REJECTED on 4xx (a dead letter can be replayed; an
    endless retry of a request Meta refuses cannot be).
*/
#include "rst_meta.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_NORM_MAX        1024      //  longest normalised value we hash
#define S_WAIT_368_MS     (3600 * 1000LL)   //  "blocked": long wait (reference §7)
#define S_WAIT_613_LONG   (3600 * 1000LL)   //  613/1487632 budget edits: wait 1 h
#define S_WAIT_MAX_MS     (24 * 3600 * 1000LL)  //  cap on any hint we believe

void
rst_meta_sha256_hex (const void *data, size_t len, char out[RST_META_HASH_HEX])
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (digest, data, len);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof digest; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[64] = 0;
}

//  --------------------------------------------------------------------------
//  Normalisation

//  Appends C to OUT if there is room (keeping a NUL). Returns 0 or -1.
static int
s_put (char *out, size_t outlen, size_t *n, char c)
{
    if (*n + 1 >= outlen)
        return -1;
    out[(*n)++] = c;
    return 0;
}

//  Folds the Latin-1 letter U+00C0..U+00FF given by its second UTF-8 byte
//  (after 0xC3) into an ASCII letter, or 0 if it has none.
static char
s_fold_latin1 (unsigned char b)
{
    static const char *map =
        "aaaaaaaceeeeiiii"      //  C0-CF
        "dnooooo\0ouuuuyts"     //  D0-DF (D7 ×, DE þ→t, DF ß→s)
        "aaaaaaaceeeeiiii"      //  E0-EF
        "dnooooo\0ouuuuyty";    //  F0-FF (F7 ÷)
    if (b < 0x80 || b > 0xBF)
        return 0;
    return map[b - 0x80];
}

//  Lowercase letters only. FOLD: Latin-1 accents become a-z; otherwise
//  Latin-1 capitals are lowercased and other UTF-8 letters kept as is.
static int
s_letters (const char *value, int fold, char *out, size_t outlen)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *) value;
    while (*p) {
        if (*p < 0x80) {
            if (isalpha (*p) && s_put (out, outlen, &n, (char) tolower (*p)))
                return -1;
            p++;
            continue;
        }
        if (*p == 0xC3 && p[1] >= 0x80 && p[1] <= 0xBF) {
            unsigned char b = p[1];
            if (b == 0x97 || b == 0xB7) {  //  × ÷: not letters
                p += 2;
                continue;
            }
            if (fold) {
                char c = s_fold_latin1 (b);
                if (c && s_put (out, outlen, &n, c))
                    return -1;
            }
            else {
                if (b <= 0x9E && b != 0x97 && b != 0x9F)
                    b += 0x20;
                if (s_put (out, outlen, &n, (char) 0xC3) || s_put (out, outlen, &n, (char) b))
                    return -1;
            }
            p += 2;
            continue;
        }
        //  Other UTF-8 sequences (or stray bytes): kept unless folding.
        size_t seq = *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : *p >= 0xC0 ? 2 : 1;
        for (size_t i = 0; i < seq && *p; i++, p++)
            if (!fold && s_put (out, outlen, &n, (char) *p))
                return -1;
        //  Unicode punctuation such as "’" or "–" (E2 80 xx) is dropped.
        if (!fold && seq == 3 && n >= 3 && (unsigned char) out[n - 3] == 0xE2
            && (unsigned char) out[n - 2] == 0x80)
            n -= 3;
    }
    out[n] = 0;
    return n ? (int) n : -1;
}

static int
s_trim_copy (const char *value, int lower, char *out, size_t outlen)
{
    while (*value && isspace ((unsigned char) *value))
        value++;
    size_t len = strlen (value);
    while (len && isspace ((unsigned char) value[len - 1]))
        len--;
    if (!len || len + 1 > outlen)
        return -1;
    for (size_t i = 0; i < len; i++)
        out[i] = lower ? (char) tolower ((unsigned char) value[i]) : value[i];
    out[len] = 0;
    return (int) len;
}

static int
s_phone (const char *value, char *out, size_t outlen)
{
    char digits[64];
    size_t n = 0;
    int plus = 0;
    for (const char *p = value; *p; p++) {
        if (*p == '+' && n == 0)
            plus = 1;
        else if (isdigit ((unsigned char) *p)) {
            if (n + 1 >= sizeof digits)
                return -1;
            digits[n++] = *p;
        }
    }
    digits[n] = 0;
    const char *d = digits;
    if (!plus && n > 2 && d[0] == '0' && d[1] == '0')
        plus = 1;           //  00 = international prefix
    while (*d == '0')
        d++;
    n = strlen (d);
    if (n == 0)
        return -1;
    const char *cc = "";
    if (!plus && d[0] != '0' && d[1] != '0'
        && ((n == 11 && d[2] == '9') || (n == 10 && d[2] >= '2' && d[2] <= '5')))
        cc = "55";          //  Brazilian number given without country code
    int len = snprintf (out, outlen, "%s%s", cc, d);
    return len > 0 && (size_t) len < outlen ? len : -1;
}

static int
s_gender (const char *value, char *out, size_t outlen)
{
    char word[32];
    if (s_letters (value, 1, word, sizeof word) < 0 || outlen < 2)
        return -1;
    if (!strcmp (word, "m") || !strcmp (word, "male") || !strcmp (word, "masculino")
        || !strcmp (word, "man") || !strcmp (word, "homem"))
        out[0] = 'm';
    else if (!strcmp (word, "f") || !strcmp (word, "female") || !strcmp (word, "feminino")
             || !strcmp (word, "woman") || !strcmp (word, "mulher"))
        out[0] = 'f';
    else
        return -1;
    out[1] = 0;
    return 1;
}

static int
s_valid_date (int y, int m, int d)
{
    static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return y >= 1900 && y <= 2100 && m >= 1 && m <= 12 && d >= 1 && d <= days[m - 1];
}

static int
s_birth (const char *value, char *out, size_t outlen)
{
    int a, b, c;
    char s1, s2, tail;
    int y = 0, m = 0, d = 0;
    size_t len = strlen (value);
    if (len == 8 && strspn (value, "0123456789") == 8) {
        if (sscanf (value, "%4d%2d%2d", &y, &m, &d) != 3)
            return -1;
    }
    else if (sscanf (value, " %d%c%d%c%d %c", &a, &s1, &b, &s2, &c, &tail) == 5
             && s1 == s2 && (s1 == '-' || s1 == '/' || s1 == '.')) {
        if (a >= 1000) {
            y = a, m = b, d = c;            //  YYYY-MM-DD
        }
        else if (a > 12) {
            y = c, m = b, d = a;            //  D/M/YYYY
        }
        else {
            y = c, m = a, d = b;            //  M/D/YYYY (Meta's example)
            if (m > 12 || !s_valid_date (y, m, d))
                y = c, m = b, d = a;
        }
    }
    else
        return -1;
    if (!s_valid_date (y, m, d))
        return -1;
    int n = snprintf (out, outlen, "%04d%02d%02d", y, m, d);
    return n == 8 && (size_t) n < outlen ? n : -1;
}

static int
s_zip (const char *value, char *out, size_t outlen)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *) value; *p; p++)
        if (isalnum (*p) && s_put (out, outlen, &n, (char) tolower (*p)))
            return -1;
    out[n] = 0;
    //  US ZIP+4 ("94025-1234", 9 digits once the dash is gone): first 5.
    const char *dash = strchr (value, '-');
    if (n == 9 && strspn (out, "0123456789") == 9 && dash && dash - value == 5
        && strspn (value, "0123456789") == 5) {
        out[5] = 0;
        n = 5;
    }
    return n ? (int) n : -1;
}

int
rst_meta_normalize (rst_meta_key_t key, const char *value, char *out, size_t outlen)
{
    if (!value || !out || outlen == 0)
        return -1;
    switch (key) {
    case RST_META_EM:
        return s_trim_copy (value, 1, out, outlen);
    case RST_META_PH:
        return s_phone (value, out, outlen);
    case RST_META_FN:
    case RST_META_LN:
        return s_letters (value, 0, out, outlen);
    case RST_META_GE:
        return s_gender (value, out, outlen);
    case RST_META_DB:
        return s_birth (value, out, outlen);
    case RST_META_CT:
    case RST_META_ST:
        return s_letters (value, 1, out, outlen);
    case RST_META_ZP:
        return s_zip (value, out, outlen);
    case RST_META_COUNTRY: {
        int n = s_letters (value, 1, out, outlen);
        return n == 2 ? n : -1;
    }
    case RST_META_EXTERNAL_ID:
        return s_trim_copy (value, 0, out, outlen);
    }
    return -1;
}

//  1 if VALUE is exactly 64 hex digits (either case).
static int
s_is_hash (const char *value)
{
    size_t i = 0;
    for (; value[i]; i++)
        if (i >= 64 || !isxdigit ((unsigned char) value[i]))
            return 0;
    return i == 64;
}

int
rst_meta_hash (rst_meta_key_t key, const char *value, char out[RST_META_HASH_HEX])
{
    if (!value)
        return -1;
    if (s_is_hash (value)) {
        for (int i = 0; i < 64; i++)
            out[i] = (char) tolower ((unsigned char) value[i]);
        out[64] = 0;
        return 0;
    }
    char norm[S_NORM_MAX];
    int n = rst_meta_normalize (key, value, norm, sizeof norm);
    if (n < 0)
        return -1;
    rst_meta_sha256_hex (norm, (size_t) n, out);
    sodium_memzero (norm, sizeof norm);
    return 0;
}

//  --------------------------------------------------------------------------
//  Event objects and bodies

static int
s_present (const char *s)
{
    return s && *s;
}

static int
s_action_source_ok (const char *s)
{
    static const char *known[] = {"website", "app", "email", "phone_call", "chat",
                                  "physical_store", "system_generated", "business_messaging",
                                  "other"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp (s, known[i]))
            return 1;
    return 0;
}

//  Adds KEY: [sha256(normalised VALUE)] to USER_DATA when VALUE is present
//  and normalises to something. Returns 0, or -1 (out of memory).
static int
s_add_hashed (cJSON *user_data, const char *name, rst_meta_key_t key, const char *value)
{
    if (!s_present (value))
        return 0;
    char hex[RST_META_HASH_HEX];
    if (rst_meta_hash (key, value, hex))
        return 0;           //  nothing usable: leave the key out
    cJSON *arr = cJSON_AddArrayToObject (user_data, name);
    cJSON *item = cJSON_CreateString (hex);
    if (!arr || !item) {
        cJSON_Delete (item);
        return -1;
    }
    cJSON_AddItemToArray (arr, item);
    return 0;
}

static int
s_add_string (cJSON *obj, const char *name, const char *value)
{
    if (!s_present (value))
        return 0;
    return cJSON_AddStringToObject (obj, name, value) ? 0 : -1;
}

char *
rst_meta_event_json (const rst_meta_event_t *ev, char *err, size_t errlen)
{
    char dummy[1];
    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    if (!ev) {
        snprintf (err, errlen, "no event");
        return NULL;
    }
    if (!s_present (ev->event_name)) {
        snprintf (err, errlen, "event_name is required");
        return NULL;
    }
    if (!s_present (ev->event_id)) {
        snprintf (err, errlen, "event_id is required");
        return NULL;
    }
    if (ev->event_time <= 0) {
        snprintf (err, errlen, "event_time is required (Unix seconds)");
        return NULL;
    }
    if (!s_present (ev->action_source) || !s_action_source_ok (ev->action_source)) {
        snprintf (err, errlen, "action_source is required and must be one of Meta's values");
        return NULL;
    }
    if (!strcmp (ev->action_source, "website")
        && (!s_present (ev->event_source_url) || !s_present (ev->client_user_agent))) {
        snprintf (err, errlen, "a website event needs event_source_url and client_user_agent");
        return NULL;
    }
    int purchase = !strcmp (ev->event_name, "Purchase");
    if (purchase && (!ev->has_value || !s_present (ev->currency))) {
        snprintf (err, errlen, "a Purchase needs value and currency");
        return NULL;
    }
    //  Never send a future time (reference §2): clamp to now.
    int64_t now = (int64_t) time (NULL);
    int64_t event_time = ev->event_time > now ? now : ev->event_time;

    cJSON *root = cJSON_CreateObject ();
    cJSON *user_data = NULL, *custom = NULL;
    if (!root)
        goto nomem;
    if (s_add_string (root, "event_name", ev->event_name)
        || !cJSON_AddNumberToObject (root, "event_time", (double) event_time)
        || s_add_string (root, "event_id", ev->event_id)
        || s_add_string (root, "action_source", ev->action_source)
        || s_add_string (root, "event_source_url", ev->event_source_url))
        goto nomem;
    if (!(user_data = cJSON_AddObjectToObject (root, "user_data")))
        goto nomem;
    if (s_add_string (user_data, "client_ip_address", ev->client_ip_address)
        || s_add_string (user_data, "client_user_agent", ev->client_user_agent)
        || s_add_string (user_data, "fbc", ev->fbc) || s_add_string (user_data, "fbp", ev->fbp)
        || s_add_hashed (user_data, "external_id", RST_META_EXTERNAL_ID, ev->external_id)
        || s_add_hashed (user_data, "em", RST_META_EM, ev->em)
        || s_add_hashed (user_data, "ph", RST_META_PH, ev->ph)
        || s_add_hashed (user_data, "fn", RST_META_FN, ev->fn)
        || s_add_hashed (user_data, "ln", RST_META_LN, ev->ln)
        || s_add_hashed (user_data, "ct", RST_META_CT, ev->ct)
        || s_add_hashed (user_data, "st", RST_META_ST, ev->st)
        || s_add_hashed (user_data, "zp", RST_META_ZP, ev->zp)
        || s_add_hashed (user_data, "country", RST_META_COUNTRY, ev->country))
        goto nomem;
    if (ev->has_value || s_present (ev->currency) || s_present (ev->content_id)
        || s_present (ev->content_name) || s_present (ev->order_id)) {
        if (!(custom = cJSON_AddObjectToObject (root, "custom_data")))
            goto nomem;
        if (ev->has_value && !cJSON_AddNumberToObject (custom, "value", ev->value))
            goto nomem;
        if (s_add_string (custom, "currency", ev->currency))
            goto nomem;
        if (s_present (ev->content_id)) {
            cJSON *ids = cJSON_AddArrayToObject (custom, "content_ids");
            cJSON *id = cJSON_CreateString (ev->content_id);
            if (!ids || !id) {
                cJSON_Delete (id);
                goto nomem;
            }
            cJSON_AddItemToArray (ids, id);
            if (!cJSON_AddStringToObject (custom, "content_type", "product"))
                goto nomem;
            cJSON *contents = cJSON_AddArrayToObject (custom, "contents");
            cJSON *one = cJSON_CreateObject ();
            if (!contents || !one) {
                cJSON_Delete (one);
                goto nomem;
            }
            cJSON_AddItemToArray (contents, one);
            if (!cJSON_AddStringToObject (one, "id", ev->content_id)
                || !cJSON_AddNumberToObject (one, "quantity", 1)
                || (ev->has_value && !cJSON_AddNumberToObject (one, "item_price", ev->value)))
                goto nomem;
        }
        if (s_add_string (custom, "content_name", ev->content_name)
            || s_add_string (custom, "order_id", ev->order_id))
            goto nomem;
    }
    char *text = cJSON_PrintUnformatted (root);
    cJSON_Delete (root);
    if (!text)
        snprintf (err, errlen, "out of memory");
    return text;
nomem:
    cJSON_Delete (root);
    snprintf (err, errlen, "out of memory");
    return NULL;
}

char *
rst_meta_body (const char *const *events, size_t count, const char *test_event_code,
               size_t *len)
{
    if (!events || count == 0 || count > RST_META_MAX_EVENTS)
        return NULL;
    char *code = NULL;
    if (test_event_code && *test_event_code) {
        cJSON *s = cJSON_CreateString (test_event_code);
        code = s ? cJSON_PrintUnformatted (s) : NULL;
        cJSON_Delete (s);
        if (!code)
            return NULL;
    }
    static const char head[] = "{\"data\":[";
    static const char agent[] = "],\"partner_agent\":\"rastro\"";
    static const char tec[] = ",\"test_event_code\":";
    size_t need = sizeof head + sizeof agent + 2;
    for (size_t i = 0; i < count; i++) {
        if (!events[i]) {
            free (code);
            return NULL;
        }
        need += strlen (events[i]) + 1;
    }
    if (code)
        need += sizeof tec + strlen (code);
    char *body = malloc (need);
    if (!body) {
        free (code);
        return NULL;
    }
    size_t n = 0;
    memcpy (body, head, sizeof head - 1);
    n += sizeof head - 1;
    for (size_t i = 0; i < count; i++) {
        if (i)
            body[n++] = ',';
        size_t l = strlen (events[i]);
        memcpy (body + n, events[i], l);
        n += l;
    }
    memcpy (body + n, agent, sizeof agent - 1);
    n += sizeof agent - 1;
    if (code) {
        memcpy (body + n, tec, sizeof tec - 1);
        n += sizeof tec - 1;
        size_t l = strlen (code);
        memcpy (body + n, code, l);
        n += l;
        free (code);
    }
    body[n++] = '}';
    body[n] = 0;
    if (len)
        *len = n;
    return body;
}

//  --------------------------------------------------------------------------
//  Replies

//  Longest estimated_time_to_regain_access (minutes) in an
//  X-Business-Use-Case-Usage value, in ms; 0 when none or malformed.
static int64_t
s_usage_wait_ms (const char *header)
{
    if (!header)
        return 0;
    cJSON *root = cJSON_Parse (header);
    if (!root)
        return 0;
    double minutes = 0;
    cJSON *account;
    cJSON_ArrayForEach (account, root) {
        cJSON *entry;
        if (!cJSON_IsArray (account))
            continue;
        cJSON_ArrayForEach (entry, account) {
            cJSON *eta = cJSON_GetObjectItemCaseSensitive (entry, "estimated_time_to_regain_access");
            if (cJSON_IsNumber (eta) && eta->valuedouble > minutes)
                minutes = eta->valuedouble;
        }
    }
    cJSON_Delete (root);
    if (minutes > (double) S_WAIT_MAX_MS / 60000.0)
        minutes = (double) S_WAIT_MAX_MS / 60000.0;
    return (int64_t) (minutes * 60000.0);
}

//  Retry-After as delay-seconds, in ms; 0 when absent or not a number
//  (HTTP dates are not used by Meta).
static int64_t
s_retry_after_ms (const char *value)
{
    if (!value)
        return 0;
    while (*value == ' ')
        value++;
    char *end;
    errno = 0;
    long long s = strtoll (value, &end, 10);
    if (errno || end == value || s <= 0)
        return 0;
    while (*end == ' ' || *end == '\r' || *end == '\n')
        end++;
    if (*end)
        return 0;
    if (s > S_WAIT_MAX_MS / 1000)
        s = S_WAIT_MAX_MS / 1000;
    return (int64_t) s * 1000;
}

static void
s_copy (char *dst, size_t dstlen, const char *src)
{
    snprintf (dst, dstlen, "%s", src ? src : "");
}

static int
s_is_throttle_code (int code)
{
    return code == 4 || code == 17 || code == 32 || code == 341 || code == 613 || code == 368
           || (code >= 80000 && code <= 80014);
}

static int
s_is_permanent_code (int code, int subcode)
{
    (void) subcode;
    return code == 100 || code == 190 || code == 102 || code == 3 || code == 10
           || (code >= 200 && code <= 299) || code == 2635 || code == 105;
}

void
rst_meta_classify (long http_status, const char *curl_error, const char *body, size_t len,
                   const char *usage_header, const char *retry_after, rst_meta_result_t *out)
{
    memset (out, 0, sizeof *out);
    out->http_status = http_status;
    out->wait_ms = s_usage_wait_ms (usage_header);
    int64_t ra = s_retry_after_ms (retry_after);
    if (ra > out->wait_ms)
        out->wait_ms = ra;

    if (curl_error) {
        out->verdict = RST_META_RETRY;
        out->http_status = 0;
        snprintf (out->message, sizeof out->message, "transport: %s", curl_error);
        return;
    }
    cJSON *root = body && len ? cJSON_ParseWithLength (body, len) : NULL;
    if (http_status >= 200 && http_status < 300) {
        cJSON *n = root ? cJSON_GetObjectItemCaseSensitive (root, "events_received") : NULL;
        if (cJSON_IsObject (root) && cJSON_IsNumber (n) && n->valuedouble >= 0) {
            out->verdict = RST_META_ACCEPTED;
            out->events_received = n->valueint;
            cJSON *trace = cJSON_GetObjectItemCaseSensitive (root, "fbtrace_id");
            if (cJSON_IsString (trace))
                s_copy (out->fbtrace_id, sizeof out->fbtrace_id, trace->valuestring);
        }
        else {
            out->verdict = RST_META_RETRY;
            snprintf (out->message, sizeof out->message,
                      "HTTP %ld with a malformed body (no events_received)", http_status);
        }
        cJSON_Delete (root);
        return;
    }
    cJSON *error = cJSON_IsObject (root) ? cJSON_GetObjectItemCaseSensitive (root, "error") : NULL;
    if (!cJSON_IsObject (error)) {
        //  No Meta error object: a proxy, a load balancer, a truncated reply.
        out->verdict = RST_META_RETRY;
        out->throttled = http_status == 429;
        snprintf (out->message, sizeof out->message, "HTTP %ld without a Graph API error",
                  http_status);
        cJSON_Delete (root);
        return;
    }
    cJSON *code = cJSON_GetObjectItemCaseSensitive (error, "code");
    cJSON *sub = cJSON_GetObjectItemCaseSensitive (error, "error_subcode");
    cJSON *transient = cJSON_GetObjectItemCaseSensitive (error, "is_transient");
    cJSON *message = cJSON_GetObjectItemCaseSensitive (error, "message");
    cJSON *user_msg = cJSON_GetObjectItemCaseSensitive (error, "error_user_msg");
    cJSON *trace = cJSON_GetObjectItemCaseSensitive (error, "fbtrace_id");
    out->code = cJSON_IsNumber (code) ? code->valueint : 0;
    out->subcode = cJSON_IsNumber (sub) ? sub->valueint : 0;
    if (cJSON_IsString (trace))
        s_copy (out->fbtrace_id, sizeof out->fbtrace_id, trace->valuestring);
    if (cJSON_IsString (message) && cJSON_IsString (user_msg) && *user_msg->valuestring)
        snprintf (out->message, sizeof out->message, "%s (%s)", message->valuestring,
                  user_msg->valuestring);
    else if (cJSON_IsString (message))
        s_copy (out->message, sizeof out->message, message->valuestring);
    else
        snprintf (out->message, sizeof out->message, "HTTP %ld, error code %d", http_status,
                  out->code);
    cJSON_Delete (root);

    if (cJSON_IsTrue (transient) || out->code == 1 || out->code == 2) {
        out->verdict = RST_META_RETRY;
        out->throttled = s_is_throttle_code (out->code);
        return;
    }
    if (s_is_throttle_code (out->code)) {
        out->verdict = RST_META_RETRY;
        out->throttled = 1;
        if (out->code == 368 && out->wait_ms < S_WAIT_368_MS)
            out->wait_ms = S_WAIT_368_MS;
        if (out->code == 613 && out->subcode == 1487632 && out->wait_ms < S_WAIT_613_LONG)
            out->wait_ms = S_WAIT_613_LONG;
        return;
    }
    if (s_is_permanent_code (out->code, out->subcode)) {
        out->verdict = RST_META_REJECTED;
        out->split = out->code == 100 && out->subcode != 33;
        return;
    }
    //  Unknown code: decided by the HTTP status.
    out->verdict = http_status >= 500 || http_status == 429 ? RST_META_RETRY : RST_META_REJECTED;
    out->throttled = http_status == 429;
}
