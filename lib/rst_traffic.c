/*  rst_traffic — tells automated traffic from people (see rst_traffic.h).

    User-Agent rules, applied to the lowercased first RST_TRAFFIC_UA_SCAN
    bytes, in this order (the first match gives the reason):
      1. empty or only blanks                                   empty-ua
      2. a known link-preview fetcher (s_preview)               preview-ua
      3. a known crawler (s_crawlers)                           crawler-ua
      4. a headless browser or automation marker (s_headless)   headless-ua
      5. an HTTP library or tool at the start (s_tools)         tool-ua
      6. a product token (a run of letters and digits) that is
         "bot" or ends in "bot", or contains "spider", "crawler"
         or "scraper" — except device names that happen to end
         in "bot" (s_not_bots: CUBOT phones)                    bot-ua
    Substring lists only hold names no browser puts in its User-Agent;
    rule 6 works on whole tokens so that a phone model or a word such as
    "Botswana" is not a bot. The tests run real Android, iOS, Samsung,
    Instagram, Facebook and Telegram in-app User-Agents through it.

    IP rate: a table of SLOTS entries (power of two), open addressing with
    a probe window of S_PROBE entries. Each entry holds one address key
    and two per-minute counters (the current minute and the previous one);
    the rate at time t is prev × (1 − elapsed fraction of the minute) +
    cur, the usual sliding-window estimate. A new address takes an empty
    entry of its probe window, else the one idle the longest (counted in
    rst_traffic_evictions when it was still active). States of an entry:

        EMPTY --first request--> COUNTING (cur++) --next minute--> prev = cur, cur = 0
          ^                          |
          +---- evicted by a new address when it is the oldest of its window

    Caveats: the estimate is approximate (±1 minute of history); an
    address evicted from a full table starts again from zero; events older
    than the previous minute of their entry are not counted (late replays).
*/
#include "rst_traffic.h"
#include "rst_shard.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define S_PROBE     8           //  entries looked at for one address
#define S_KEY_MAX   17          //  family byte + 16 address bytes
#define S_MINUTE_MS 60000

typedef struct {
    uint64_t hash;              //  0 = empty
    int64_t minute;             //  minute number of `cur`
    uint32_t cur;               //  requests in that minute
    uint32_t prev;              //  requests in the minute before
    uint8_t keylen;
    uint8_t key[S_KEY_MAX];     //  'v4' + 4 bytes, '6' + /64, or 'x' + hash of the text
} s_entry_t;

struct rst_traffic_t {
    int rate_per_min;           //  ≤ 0: the rate rule is off
    size_t mask;                //  slots - 1
    s_entry_t *table;           //  owned
    uint64_t evictions;
};

//  --------------------------------------------------------------------------
//  User-Agent

static const char *s_preview[] = {
    "facebookexternalhit", "facebot", "facebookcatalog", "meta-externalagent",
    "meta-externalfetcher", "telegrambot", "twitterbot", "slackbot", "slack-imgproxy",
    "discordbot", "linkedinbot", "skypeuripreview", "pinterestbot", "redditbot", "embedly",
    "vkshare", "iframely", "bitlybot", "snapchat-bot", "google-pagerenderer",
    "mastodon", "bluesky cardyb", "outbrain", "w3c_validator", "nuzzel", "quora link preview",
    "qwantify", "applebot", NULL,
};

//  "whatsapp/" is only a preview fetcher at the very start ("WhatsApp/2.23.20.0 A").
static const char *s_preview_prefix[] = {"whatsapp/", "whatsapp ", "kakaotalk-scrap", NULL};

static const char *s_crawlers[] = {
    "googlebot", "adsbot-google", "mediapartners-google", "google-inspectiontool",
    "googleother", "feedfetcher-google", "apis-google", "storebot-google", "bingbot",
    "bingpreview", "adidxbot", "msnbot", "yandexbot", "yandex.com/bots", "baiduspider",
    "duckduckbot", "slurp", "sogou web spider", "exabot", "petalbot", "ahrefsbot", "semrushbot", "mj12bot", "dotbot", "bytespider",
    "gptbot", "chatgpt-user", "oai-searchbot", "ccbot", "claudebot", "claude-web",
    "anthropic-ai", "perplexitybot", "amazonbot", "seznambot", "dataforseobot", "blexbot",
    "screaming frog", "ia_archiver", "archive.org_bot", "uptimerobot", "pingdom", "statuscake",
    "site24x7", "gtmetrix", "chrome-lighthouse", "pagespeed", "zgrab", "masscan", "nmap",
    "nikto", "sqlmap", "censys", "netcraft", "expanse", NULL,
};

static const char *s_headless[] = {
    "headlesschrome", "phantomjs", "puppeteer", "playwright", "selenium", "webdriver",
    "slimerjs", "htmlunit", "splash", "cypress", "nightmare", "jsdom", NULL,
};

//  Tools and libraries, at the start of the User-Agent (their default).
static const char *s_tools[] = {
    "curl/", "curl ", "wget/", "wget ", "python-requests", "python-urllib", "python-httpx",
    "python/", "aiohttp", "httpx", "urllib", "go-http-client", "go ", "java/", "java ",
    "okhttp", "apache-httpclient", "jakarta", "libwww-perl", "lwp::", "www-mechanize", "php/",
    "guzzlehttp", "node-fetch", "node/", "axios/", "undici", "got ", "httpie", "postmanruntime",
    "insomnia", "scrapy", "ruby", "faraday", "rest-client", "dart:io", "dart/", "reqwest",
    "rust", "hyper/", "winhttp", "powershell", "libcurl", "http_request", "httpclient",
    "restsharp", "dalvik/", "cfnetwork/", "mechanize", "nutch", "heritrix", NULL,
};

//  Device or product names that end in "bot" and are not bots.
static const char *s_not_bots[] = {"cubot", NULL};

static int
s_contains_any (const char *hay, const char *const *needles)
{
    for (size_t i = 0; needles[i]; i++)
        if (strstr (hay, needles[i]))
            return 1;
    return 0;
}

static int
s_starts_with_any (const char *hay, const char *const *prefixes)
{
    for (size_t i = 0; prefixes[i]; i++)
        if (!strncmp (hay, prefixes[i], strlen (prefixes[i])))
            return 1;
    return 0;
}

static int
s_is_alnum (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

//  Rule 6: a token that is a bot, spider, crawler or scraper.
static int
s_has_bot_token (const char *ua)
{
    const char *p = ua;
    while (*p) {
        while (*p && !s_is_alnum (*p))
            p++;
        const char *start = p;
        while (*p && s_is_alnum (*p))
            p++;
        size_t n = (size_t) (p - start);
        if (n == 0)
            continue;
        char token[64];
        if (n >= sizeof token)
            n = sizeof token - 1;
        memcpy (token, start, n);
        token[n] = 0;
        if (n >= 3 && !strcmp (token + n - 3, "bot")) {
            int device = 0;
            for (size_t i = 0; s_not_bots[i]; i++)
                device |= !strcmp (token, s_not_bots[i]);
            if (!device)
                return 1;
        }
        if (strstr (token, "spider") || strstr (token, "crawler") || strstr (token, "scraper"))
            return 1;
    }
    return 0;
}

const char *
rst_traffic_ua_reason (const char *ua, size_t len)
{
    char low[RST_TRAFFIC_UA_SCAN + 1];
    size_t n = 0;
    int blank = 1;
    for (size_t i = 0; ua && i < len && n < RST_TRAFFIC_UA_SCAN; i++) {
        unsigned char c = (unsigned char) ua[i];
        if (c == 0)
            c = ' ';    //  no NUL inside the C string we search
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char) (c - 'A' + 'a');
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
            blank = 0;
        low[n++] = (char) c;
    }
    low[n] = 0;
    if (blank)
        return RST_TRAFFIC_EMPTY_UA;
    const char *s = low;
    while (*s == ' ' || *s == '\t')
        s++;
    if (s_contains_any (s, s_preview) || s_starts_with_any (s, s_preview_prefix))
        return RST_TRAFFIC_PREVIEW_UA;
    if (s_contains_any (s, s_crawlers))
        return RST_TRAFFIC_CRAWLER_UA;
    if (s_contains_any (s, s_headless))
        return RST_TRAFFIC_HEADLESS_UA;
    if (s_starts_with_any (s, s_tools))
        return RST_TRAFFIC_TOOL_UA;
    if (s_has_bot_token (s))
        return RST_TRAFFIC_BOT_UA;
    return NULL;
}

//  --------------------------------------------------------------------------
//  IP rate

rst_traffic_t *
rst_traffic_new (int rate_per_min, size_t slots)
{
    if (slots == 0)
        slots = RST_TRAFFIC_SLOTS_DEFAULT;
    size_t n = S_PROBE;
    while (n < slots && n < ((size_t) 1 << 30))
        n <<= 1;
    rst_traffic_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->table = calloc (n, sizeof *self->table);
    if (!self->table) {
        free (self);
        return NULL;
    }
    self->mask = n - 1;
    self->rate_per_min = rate_per_min;
    return self;
}

void
rst_traffic_destroy (rst_traffic_t **self_p)
{
    assert (self_p);
    rst_traffic_t *self = *self_p;
    if (!self)
        return;
    free (self->table);
    free (self);
    *self_p = NULL;
}

//  The table key of address IP into KEY (OUT). Returns its length.
static size_t
s_key (const char *ip, size_t len, uint8_t key[S_KEY_MAX])
{
    char text[64];
    if (ip && len > 0 && len < sizeof text) {
        memcpy (text, ip, len);
        text[len] = 0;
        unsigned char addr[16];
        if (inet_pton (AF_INET, text, addr) == 1) {
            key[0] = '4';
            memcpy (key + 1, addr, 4);
            return 5;
        }
        if (inet_pton (AF_INET6, text, addr) == 1) {
            static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
            if (!memcmp (addr, mapped, sizeof mapped)) {
                key[0] = '4';
                memcpy (key + 1, addr + 12, 4);
                return 5;
            }
            key[0] = '6';
            memcpy (key + 1, addr, 8);      //  one host owns a whole /64
            return 9;
        }
    }
    uint64_t h = rst_shard_hash (ip ? ip : "", ip ? len : 0);
    key[0] = 'x';
    memcpy (key + 1, &h, sizeof h);
    return 1 + sizeof h;
}

//  Finds the entry of KEY; with CREATE, makes one (evicting the oldest of
//  the probe window if needed). Returns NULL when absent and not created.
static s_entry_t *
s_find (rst_traffic_t *self, const uint8_t *key, size_t keylen, int64_t minute, int create)
{
    uint64_t h = rst_shard_hash (key, keylen) | 1;
    s_entry_t *victim = NULL;
    for (size_t i = 0; i < S_PROBE; i++) {
        s_entry_t *e = &self->table[(h + i) & self->mask];
        if (e->hash == h && e->keylen == keylen && !memcmp (e->key, key, keylen))
            return e;
        if (!create)
            continue;
        if (e->hash == 0) {
            if (!victim || victim->hash != 0)
                victim = e;
        }
        else if (!victim || (victim->hash != 0 && e->minute < victim->minute))
            victim = e;
    }
    if (!create)
        return NULL;
    if (victim->hash != 0 && victim->minute >= minute - 1)
        self->evictions++;
    memset (victim, 0, sizeof *victim);
    victim->hash = h;
    victim->keylen = (uint8_t) keylen;
    memcpy (victim->key, key, keylen);
    victim->minute = minute;
    return victim;
}

//  Sliding-window estimate of E's requests in the minute before NOW_MS.
static double
s_estimate (const s_entry_t *e, int64_t now_ms)
{
    int64_t minute = now_ms / S_MINUTE_MS;
    double frac = (double) (now_ms % S_MINUTE_MS) / S_MINUTE_MS;
    if (e->minute == minute)
        return e->prev * (1.0 - frac) + e->cur;
    if (e->minute == minute - 1)
        return e->cur * (1.0 - frac);
    if (e->minute > minute)         //  NOW_MS is older than the entry: an upper bound
        return (double) e->prev + e->cur;
    return 0;
}

const char *
rst_traffic_classify (rst_traffic_t *self, const char *ua, size_t ua_len, const char *ip,
                      size_t ip_len, int64_t now_ms)
{
    assert (self);
    if (now_ms < 0)
        now_ms = 0;
    int64_t minute = now_ms / S_MINUTE_MS;
    double rate = 0;
    if (self->rate_per_min > 0) {
        uint8_t key[S_KEY_MAX];
        size_t keylen = s_key (ip, ip_len, key);
        s_entry_t *e = s_find (self, key, keylen, minute, 1);
        if (minute > e->minute) {
            e->prev = minute == e->minute + 1 ? e->cur : 0;
            e->cur = 0;
            e->minute = minute;
        }
        if (minute == e->minute) {
            if (e->cur < UINT32_MAX)
                e->cur++;
        }
        else if (minute == e->minute - 1 && e->prev < UINT32_MAX)
            e->prev++;      //  a little late (another front's clock, a replay)
        rate = s_estimate (e, now_ms);
    }
    const char *reason = rst_traffic_ua_reason (ua, ua_len);
    if (reason)
        return reason;
    if (self->rate_per_min > 0 && rate > (double) self->rate_per_min)
        return RST_TRAFFIC_IP_RATE;
    return NULL;
}

double
rst_traffic_ip_rate (const rst_traffic_t *self, const char *ip, size_t ip_len, int64_t now_ms)
{
    assert (self);
    uint8_t key[S_KEY_MAX];
    size_t keylen = s_key (ip, ip_len, key);
    s_entry_t *e = s_find ((rst_traffic_t *) self, key, keylen, now_ms / S_MINUTE_MS, 0);
    return e ? s_estimate (e, now_ms) : 0;
}

uint64_t
rst_traffic_evictions (const rst_traffic_t *self)
{
    assert (self);
    return self->evictions;
}
