/*  rst_netaddr_test — trusted proxies and the client address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rst_netaddr.h"

#include <arpa/inet.h>
#include <string.h>

static struct sockaddr_storage
s_addr (const char *text)
{
    struct sockaddr_storage ss;
    memset (&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *) &ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *) &ss;
    if (inet_pton (AF_INET, text, &a4->sin_addr) == 1)
        a4->sin_family = AF_INET;
    else {
        assert_int_equal (inet_pton (AF_INET6, text, &a6->sin6_addr), 1);
        a6->sin6_family = AF_INET6;
    }
    return ss;
}

static const char *
s_client (const rst_cidr_list_t *list, const char *peer, const char *xff, char *out)
{
    struct sockaddr_storage ss = s_addr (peer);
    assert_int_equal (rst_client_address (list, (struct sockaddr *) &ss, xff, xff ? strlen (xff) : 0,
                                          out, RST_NETADDR_TEXT_MAX), 0);
    return out;
}

//  A tour: behind a trusted nginx at 10.0.0.5 the visitor is the
//  right-most untrusted address of X-Forwarded-For.
static void
test_tour (void **state)
{
    rst_cidr_list_t list;
    char err[128], out[RST_NETADDR_TEXT_MAX];
    assert_int_equal (rst_cidr_list_parse (&list, "10.0.0.0/8, ::1", err, sizeof err), 0);
    assert_string_equal (s_client (&list, "10.0.0.5", "203.0.113.7", out), "203.0.113.7");
    //  An untrusted peer's header is ignored.
    assert_string_equal (s_client (&list, "198.51.100.1", "203.0.113.7", out), "198.51.100.1");
}

static void
test_spoofing_is_ignored (void **state)
{
    rst_cidr_list_t list;
    char err[128], out[RST_NETADDR_TEXT_MAX];
    assert_int_equal (rst_cidr_list_parse (&list, "10.0.0.0/8", err, sizeof err), 0);
    //  The client prepended a fake address; the proxy appended the real one.
    assert_string_equal (s_client (&list, "10.1.2.3", "1.2.3.4, 203.0.113.7", out), "203.0.113.7");
    //  Two trusted hops.
    assert_string_equal (s_client (&list, "10.1.2.3", "203.0.113.7, 10.9.9.9", out), "203.0.113.7");
    //  Garbage stops the walk at the last good hop (the trusted peer itself here).
    assert_string_equal (s_client (&list, "10.1.2.3", "nonsense", out), "10.1.2.3");
    assert_string_equal (s_client (&list, "10.1.2.3", "", out), "10.1.2.3");
    //  Only trusted entries: the left-most one.
    assert_string_equal (s_client (&list, "10.1.2.3", "10.0.0.1", out), "10.0.0.1");
}

static void
test_ipv6_and_mapped (void **state)
{
    rst_cidr_list_t list;
    char err[128], out[RST_NETADDR_TEXT_MAX];
    assert_int_equal (rst_cidr_list_parse (&list, "127.0.0.1,2001:db8::/32", err, sizeof err), 0);
    assert_string_equal (s_client (&list, "::ffff:127.0.0.1", "2804:14c:65a1:4000::1", out),
                         "2804:14c:65a1:4000::1");
    assert_string_equal (s_client (&list, "2001:db8::9", "203.0.113.7", out), "203.0.113.7");
    assert_string_equal (s_client (&list, "::ffff:198.51.100.1", NULL, out), "198.51.100.1");
}

static void
test_parse_errors (void **state)
{
    rst_cidr_list_t list;
    char err[128];
    assert_int_equal (rst_cidr_list_parse (&list, "", err, sizeof err), 0);
    assert_int_equal (list.count, 0);
    assert_int_equal (rst_cidr_list_parse (&list, NULL, err, sizeof err), 0);
    assert_int_equal (rst_cidr_list_parse (&list, "10.0.0.0/33", err, sizeof err), -1);
    assert_int_equal (rst_cidr_list_parse (&list, "example.com", err, sizeof err), -1);
    assert_non_null (strstr (err, "example.com"));
    assert_int_equal (rst_cidr_list_parse (&list, "10.0.0.1/x", err, sizeof err), -1);
    assert_int_equal (rst_cidr_list_parse (&list, "0.0.0.0/0", err, sizeof err), 0);
    struct sockaddr_storage ss = s_addr ("8.8.8.8");
    assert_true (rst_cidr_list_contains (&list, (struct sockaddr *) &ss));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_tour),
        cmocka_unit_test (test_spoofing_is_ignored),
        cmocka_unit_test (test_ipv6_and_mapped),
        cmocka_unit_test (test_parse_errors),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
