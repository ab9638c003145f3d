/*  rst_traffic — tells automated traffic from people.

    ARCHITECTURE.md, "No cloaking": every visitor of a link gets the same
    redirect; automated traffic (crawlers, link-preview fetchers, HTTP
    tools, headless browsers, abusive rates) is only kept out of Meta events
    and counted apart. The enricher asks this class about every click.

    Two kinds of evidence:
      - the User-Agent (rst_traffic_ua_reason, pure): empty, a known crawler
        or link-preview fetcher, an HTTP library or command-line tool, a
        headless-browser marker, or a product token that names a bot,
        spider or crawler. Real mobile browsers and in-app browsers
        (Instagram, Facebook, Telegram's WebView, ...) are people;
      - the request rate per IP address (rst_traffic_classify): a sliding
        one-minute window per address (IPv6 per /64, since one host owns a
        whole /64) in a fixed-size table, so memory stays bounded whatever
        the number of addresses; above `ip_rate_per_min` an address's
        requests count as automated until its rate falls again.

    Time is passed in (milliseconds): the enricher passes the event's
    time_ms, when the request happened, so a backlog processed late is not
    mistaken for a burst. Caveat: a replayed event is counted again.
*/
#ifndef RST_TRAFFIC_H
#define RST_TRAFFIC_H

#include <stddef.h>
#include <stdint.h>

#define RST_TRAFFIC_RATE_DEFAULT    120     //  requests per minute per address
#define RST_TRAFFIC_SLOTS_DEFAULT   65536   //  addresses tracked at once
#define RST_TRAFFIC_UA_SCAN         1024    //  bytes of a User-Agent that are looked at

//  Reasons (stable strings: metric labels and analytics use them).
#define RST_TRAFFIC_EMPTY_UA    "empty-ua"      //  no User-Agent, or only blanks
#define RST_TRAFFIC_PREVIEW_UA  "preview-ua"    //  link-preview fetcher (Facebook, Telegram, ...)
#define RST_TRAFFIC_CRAWLER_UA  "crawler-ua"    //  search engine or other known crawler
#define RST_TRAFFIC_TOOL_UA     "tool-ua"       //  HTTP library or tool (curl, python-requests, ...)
#define RST_TRAFFIC_HEADLESS_UA "headless-ua"   //  headless browser or automation framework
#define RST_TRAFFIC_BOT_UA      "bot-ua"        //  a product token naming a bot, spider or crawler
#define RST_TRAFFIC_IP_RATE     "ip-rate"       //  address above the per-minute threshold

typedef struct rst_traffic_t rst_traffic_t;

//  Returns a new classifier the caller owns: RATE_PER_MIN requests per
//  minute per address (≤ 0: the rate rule is off), SLOTS addresses tracked
//  (rounded up to a power of two; 0 = RST_TRAFFIC_SLOTS_DEFAULT). NULL when
//  out of memory.
rst_traffic_t *rst_traffic_new (int rate_per_min, size_t slots);
void rst_traffic_destroy (rst_traffic_t **self_p);

//  The reason a User-Agent (LEN bytes, any bytes) is automated, or NULL
//  for a person. Returns one of the RST_TRAFFIC_*_UA strings (static).
const char *rst_traffic_ua_reason (const char *ua, size_t len);

//  Classifies one request: counts it in the window of address IP (IP_LEN
//  bytes, textual IPv4 or IPv6; anything else is keyed as is) at NOW_MS,
//  then checks the User-Agent and the rate. Returns a static reason, or
//  NULL for a person.
const char *rst_traffic_classify (rst_traffic_t *self, const char *ua, size_t ua_len,
                                  const char *ip, size_t ip_len, int64_t now_ms);

//  Estimated requests in the last minute from IP at NOW_MS (0 if unknown).
double rst_traffic_ip_rate (const rst_traffic_t *self, const char *ip, size_t ip_len,
                            int64_t now_ms);

//  Addresses evicted from the table to make room (a busy table: raise SLOTS).
uint64_t rst_traffic_evictions (const rst_traffic_t *self);

#endif
