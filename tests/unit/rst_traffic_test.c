/*  rst_traffic_test — automated-traffic classification.

    First the tutorial: a classifier, one person, one crawler, one address
    over the rate. Then real User-Agents: people (Android and iOS browsers,
    Instagram, Facebook, Telegram in-app browsers, a CUBOT phone) must never
    be marked; crawlers, link-preview fetchers, tools and headless browsers
    must be, each with its reason. Then the per-IP window (time injected,
    no sleeps), IPv6 /64 grouping, and the bounded table.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rst_traffic.h"

#define S_T0 1767225600000LL    //  a minute boundary (2026-01-01T00:00:00Z)

static const char *
s_ua (const char *ua)
{
    return rst_traffic_ua_reason (ua, strlen (ua));
}

static const char *
s_classify (rst_traffic_t *t, const char *ua, const char *ip, int64_t now_ms)
{
    return rst_traffic_classify (t, ua, strlen (ua), ip, strlen (ip), now_ms);
}

static void
test_tutorial (void **state)
{
    (void) state;
    rst_traffic_t *t = rst_traffic_new (3, 0);     //  3 requests a minute per address
    assert_non_null (t);
    const char *phone = "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, "
                        "like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36";
    assert_null (s_classify (t, phone, "203.0.113.9", S_T0));
    assert_string_equal (s_classify (t, "facebookexternalhit/1.1", "203.0.113.10", S_T0),
                         RST_TRAFFIC_PREVIEW_UA);
    assert_null (s_classify (t, phone, "203.0.113.9", S_T0 + 1000));
    assert_null (s_classify (t, phone, "203.0.113.9", S_T0 + 2000));
    assert_string_equal (s_classify (t, phone, "203.0.113.9", S_T0 + 3000), RST_TRAFFIC_IP_RATE);
    rst_traffic_destroy (&t);
    assert_null (t);
    rst_traffic_destroy (&t);
}

static void
test_people_are_people (void **state)
{
    (void) state;
    const char *people[] = {
        //  Chrome on Android
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Mobile Safari/537.36",
        //  Safari on iPhone
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
        //  Samsung Internet
        "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
        //  Instagram in-app, Android and iOS
        "Mozilla/5.0 (Linux; Android 13; moto g(60) Build/T1RDS33.116-33-3; wv) "
        "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.54 Mobile "
        "Safari/537.36 Instagram 326.0.0.42.90 Android (33/13; 400dpi; 1080x2220; motorola; "
        "moto g(60); hanoip; qcom; pt_BR; 587203284)",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Mobile/15E148 Instagram 327.1.6.30.88 (iPhone14,7; iOS 17_4; pt_BR; pt; "
        "scale=3.00; 1170x2532; 590537542)",
        //  Facebook in-app, Android and iOS
        "Mozilla/5.0 (Linux; Android 12; SM-G991B Build/SP1A.210812.016; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 "
        "[FB_IAB/FB4A;FBAV/462.0.0.45.83;]",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/455.0.0.42.106;FBBV/579366563;FBDV/"
        "iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.3.1;FBSS/3;FBID/phone;FBLC/pt_BR;FBOP/5;FBRV/0]",
        //  Messenger and Threads in-app
        "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Mobile/15E148 LightSpeed [FBAN/MessengerLiteForiOS;FBAV/445.0.0.30.111;]",
        //  Telegram's in-app browser (Android WebView)
        "Mozilla/5.0 (Linux; Android 11; Redmi Note 8 Build/RKQ1.201004.002; wv) "
        "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/123.0.6312.118 Mobile "
        "Safari/537.36 Telegram-Android/10.11.1 (Xiaomi Redmi Note 8; Android 11; SDK 30; "
        "AVERAGE)",
        //  A CUBOT phone (ends in "bot", is a person)
        "Mozilla/5.0 (Linux; Android 9; CUBOT X19) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/111.0.5563.116 Mobile Safari/537.36",
        //  Desktop browsers
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0",
        //  TikTok in-app, LINE in-app, Yandex search app
        "Mozilla/5.0 (Linux; Android 12; SM-A325M Build/SP1A.210812.016; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36 "
        "trill_330103 JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/musical_ly "
        "app_version/33.1.3 ByteLocale/pt-BR Region/BR BytedanceWebview/d8a21c6",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Mobile/15E148 Safari Line/13.16.0",
        "Mozilla/5.0 (Linux; Android 11) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
        "YaBrowser/23.11 YandexSearch/23.111 Mobile Safari/537.36",
        //  Words that contain "bot" without being bots
        "Mozilla/5.0 (Linux; Android 10; Botswana Edition) AppleWebKit/537.36 Chrome/99 Mobile",
    };
    for (size_t i = 0; i < sizeof people / sizeof people[0]; i++) {
        const char *why = s_ua (people[i]);
        if (why)
            fail_msg ("a person was marked %s: %s", why, people[i]);
    }
}

static void
test_automated_user_agents (void **state)
{
    (void) state;
    struct {
        const char *ua;
        const char *reason;
    } cases[] = {
        {"", RST_TRAFFIC_EMPTY_UA},
        {"   \t", RST_TRAFFIC_EMPTY_UA},
        {"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
         RST_TRAFFIC_PREVIEW_UA},
        {"Facebot", RST_TRAFFIC_PREVIEW_UA},
        {"TelegramBot (like TwitterBot)", RST_TRAFFIC_PREVIEW_UA},
        {"WhatsApp/2.23.20.0 A", RST_TRAFFIC_PREVIEW_UA},
        {"Twitterbot/1.0", RST_TRAFFIC_PREVIEW_UA},
        {"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", RST_TRAFFIC_PREVIEW_UA},
        {"Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
         RST_TRAFFIC_PREVIEW_UA},
        {"LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
         RST_TRAFFIC_PREVIEW_UA},
        {"Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, "
         "like Gecko) Chrome/124.0.6367.118 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
         "+http://www.google.com/bot.html)",
         RST_TRAFFIC_CRAWLER_UA},
        {"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
         RST_TRAFFIC_CRAWLER_UA},
        {"Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
         RST_TRAFFIC_CRAWLER_UA},
        {"curl/8.5.0", RST_TRAFFIC_TOOL_UA},
        {"Wget/1.21.4", RST_TRAFFIC_TOOL_UA},
        {"python-requests/2.31.0", RST_TRAFFIC_TOOL_UA},
        {"Go-http-client/2.0", RST_TRAFFIC_TOOL_UA},
        {"okhttp/4.12.0", RST_TRAFFIC_TOOL_UA},
        {"axios/1.6.8", RST_TRAFFIC_TOOL_UA},
        {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "HeadlessChrome/124.0.6367.60 Safari/537.36",
         RST_TRAFFIC_HEADLESS_UA},
        {"Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) "
         "PhantomJS/2.1.1 Safari/538.1",
         RST_TRAFFIC_HEADLESS_UA},
        {"Mozilla/5.0 (compatible; MyOwnBot/0.1)", RST_TRAFFIC_BOT_UA},
        {"some-spider/3", RST_TRAFFIC_BOT_UA},
        {"Mozilla/5.0 (compatible; GenericCrawler/1.0)", RST_TRAFFIC_BOT_UA},
        {"archive_bot", RST_TRAFFIC_BOT_UA},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *why = s_ua (cases[i].ua);
        if (!why || strcmp (why, cases[i].reason))
            fail_msg ("\"%s\": got %s, want %s", cases[i].ua, why ? why : "person",
                      cases[i].reason);
    }
    //  NULL, embedded NUL and very long values are handled.
    assert_string_equal (rst_traffic_ua_reason (NULL, 0), RST_TRAFFIC_EMPTY_UA);
    assert_string_equal (rst_traffic_ua_reason ("curl/8\0x", 8), RST_TRAFFIC_TOOL_UA);
    char big[5000];
    memset (big, 'a', sizeof big);
    assert_null (rst_traffic_ua_reason (big, sizeof big));
}

static void
test_ip_rate_sliding_window (void **state)
{
    (void) state;
    const char *ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Safari/604.1";
    rst_traffic_t *t = rst_traffic_new (120, 1024);
    assert_non_null (t);
    //  120 in the first minute: all people; the 121st is over the rate.
    for (int i = 0; i < 120; i++)
        assert_null (s_classify (t, ua, "198.51.100.7", S_T0 + i * 400));
    assert_string_equal (s_classify (t, ua, "198.51.100.7", S_T0 + 48000), RST_TRAFFIC_IP_RATE);
    //  Another address is not affected.
    assert_null (s_classify (t, ua, "198.51.100.8", S_T0 + 48000));
    //  Half a minute into the next minute the previous one weighs half:
    //  121 × 0.5 + 1 ≈ 61.5 ≤ 120, a person again.
    assert_null (s_classify (t, ua, "198.51.100.7", S_T0 + 90000));
    assert_true (rst_traffic_ip_rate (t, "198.51.100.7", 12, S_T0 + 90000) > 60);
    //  Two minutes of silence: forgotten.
    assert_true (rst_traffic_ip_rate (t, "198.51.100.7", 12, S_T0 + 240000) == 0);
    //  A slow steady stream (1 per second = 60/min) never trips 120/min.
    for (int i = 0; i < 600; i++)
        assert_null (s_classify (t, ua, "198.51.100.9", S_T0 + i * 1000));
    rst_traffic_destroy (&t);

    //  Rate rule off: never ip-rate.
    t = rst_traffic_new (0, 16);
    for (int i = 0; i < 1000; i++)
        assert_null (s_classify (t, ua, "198.51.100.7", S_T0));
    rst_traffic_destroy (&t);
}

static void
test_ipv6_grouped_by_64_and_table_bounded (void **state)
{
    (void) state;
    const char *ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Safari/604.1";
    rst_traffic_t *t = rst_traffic_new (10, 64);
    char ip[64];
    //  Ten different hosts of one /64: they share a window.
    for (int i = 0; i < 10; i++) {
        snprintf (ip, sizeof ip, "2804:14c:65a1:4000::%x", i + 1);
        assert_null (s_classify (t, ua, ip, S_T0 + i));
    }
    assert_string_equal (s_classify (t, ua, "2804:14c:65a1:4000:ffff::1", S_T0 + 20),
                         RST_TRAFFIC_IP_RATE);
    assert_null (s_classify (t, ua, "2804:14c:65a1:4001::1", S_T0 + 20));
    //  IPv4-mapped IPv6 is the IPv4 address.
    for (int i = 0; i < 10; i++)
        assert_null (s_classify (t, ua, "192.0.2.1", S_T0 + i));
    assert_string_equal (s_classify (t, ua, "::ffff:192.0.2.1", S_T0 + 30), RST_TRAFFIC_IP_RATE);
    //  100,000 addresses in a 64-slot table: bounded, evictions counted, no crash.
    for (int i = 0; i < 100000; i++) {
        snprintf (ip, sizeof ip, "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        s_classify (t, ua, ip, S_T0 + 1000);
    }
    assert_true (rst_traffic_evictions (t) > 90000);
    //  Garbage addresses are keyed as text.
    assert_null (s_classify (t, ua, "not an address", S_T0));
    assert_null (rst_traffic_classify (t, ua, strlen (ua), NULL, 0, S_T0));
    rst_traffic_destroy (&t);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_tutorial),
        cmocka_unit_test (test_people_are_people),
        cmocka_unit_test (test_automated_user_agents),
        cmocka_unit_test (test_ip_rate_sliding_window),
        cmocka_unit_test (test_ipv6_grouped_by_64_and_table_bounded),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
