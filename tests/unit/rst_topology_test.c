/*  rst_topology_test — the topology file: expansion, references, endpoints.

    The first test is the tour: load a two-node topology, read values, turn
    a reference into connect endpoints and attach real ZeroMQ sockets. The
    others check each rule of rst_topology.h, and that every broken file is
    refused with "file:line: reason".
*/
#include "rst_topology.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <unistd.h>
#include <zmq.h>

typedef struct {
    char dir[64];               //  temporary directory of the test
    char file[PATH_MAX];        //  topology file inside it
    char data[PATH_MAX];        //  data directory inside it
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    strcpy (f->dir, "/tmp/rst_topology_test.XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->file, sizeof f->file, "%s/topology.ini", f->dir);
    snprintf (f->data, sizeof f->data, "%s/data", f->dir);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    char cmd[PATH_MAX + 16];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal (system (cmd), 0);
    free (f);
    return 0;
}

static void
s_write (s_fixture_t *f, const char *text)
{
    FILE *file = fopen (f->file, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

//  Loads TEXT and expects failure with an error containing EXPECT.
static void
s_expect_error (s_fixture_t *f, const char *text, const char *expect)
{
    s_write (f, text);
    char err[512] = "";
    rst_topology_t *t = rst_topology_load (f->file, f->data, err, sizeof err);
    if (t || !strstr (err, expect))
        fail_msg ("expected an error with '%s', got %s '%s'", expect, t ? "success" : "error",
                  err);
    assert_null (t);
}

static const char *s_local =
    "; two nodes, one reference each way\n"
    "[front]\n"
    "instances = 1\n"
    "journal   = {data}/front-{i}/journal   ; inline comment\n"
    "acks      = @ipc://{data}/run/front-{i}-acks.sock\n"
    "events    = recorder.in\n"
    "sync_ms   = 10\n"
    "\n"
    "[recorder]\n"
    "instances = 3\n"
    "in        = @ipc://{data}/run/recorder-{i}-in.sock\n"
    "acks      = front.acks\n";

static void
test_tour (void **state)
{
    s_fixture_t *f = *state;
    s_write (f, s_local);
    char err[512] = "";
    rst_topology_t *t = rst_topology_load (f->file, f->data, err, sizeof err);
    assert_non_null (t);

    //  Sections in file order, with their instance counts.
    assert_int_equal (rst_topology_node_count (t), 2);
    assert_string_equal (rst_topology_node_name (t, 0), "front");
    assert_string_equal (rst_topology_node_name (t, 1), "recorder");
    assert_int_equal (rst_topology_instances (t, "front"), 1);
    assert_int_equal (rst_topology_instances (t, "recorder"), 3);
    assert_int_equal (rst_topology_instances (t, "nosuch"), 0);

    //  Plain values, with {data} and {i} expanded.
    char value[PATH_MAX], expect[PATH_MAX + 64];
    assert_int_equal (rst_topology_get (t, "front", 0, "journal", value, sizeof value), 0);
    snprintf (expect, sizeof expect, "%s/front-0/journal", f->data);
    assert_string_equal (value, expect);
    assert_int_equal (rst_topology_get (t, "recorder", 2, "in", value, sizeof value), 0);
    snprintf (expect, sizeof expect, "@ipc://%s/run/recorder-2-in.sock", f->data);
    assert_string_equal (value, expect);
    assert_int_equal (rst_topology_get (t, "front", 0, "nosuch", value, sizeof value), -1);
    assert_int_equal (rst_topology_get (t, "front", 0, "journal", value, 4), -1);
    //  rst_topology_get does not expand references.
    assert_int_equal (rst_topology_get (t, "front", 0, "events", value, sizeof value), 0);
    assert_string_equal (value, "recorder.in");
    assert_int_equal (rst_topology_get_long (t, "front", 0, "sync_ms", 99), 10);
    assert_int_equal (rst_topology_get_long (t, "front", 0, "journal", 99), 99);
    assert_int_equal (rst_topology_get_long (t, "front", 0, "nosuch", -7), -7);

    //  A reference becomes one connect per instance of the node it names.
    char *list[RST_TOPOLOGY_MAX_ENDPOINTS];
    int n = rst_topology_endpoints (t, "front", 0, "events", list, RST_TOPOLOGY_MAX_ENDPOINTS,
                                    err, sizeof err);
    assert_int_equal (n, 3);
    for (int i = 0; i < 3; i++) {
        snprintf (expect, sizeof expect, ">ipc://%s/run/recorder-%d-in.sock", f->data, i);
        assert_string_equal (list[i], expect);
    }
    rst_topology_endpoints_free (list, n);
    //  A bound endpoint keeps its '@'.
    n = rst_topology_endpoints (t, "recorder", 1, "in", list, RST_TOPOLOGY_MAX_ENDPOINTS, err,
                                sizeof err);
    assert_int_equal (n, 1);
    snprintf (expect, sizeof expect, "@ipc://%s/run/recorder-1-in.sock", f->data);
    assert_string_equal (list[0], expect);
    rst_topology_endpoints_free (list, n);
    //  Each recorder connects to the single front.
    n = rst_topology_endpoints (t, "recorder", 2, "acks", list, RST_TOPOLOGY_MAX_ENDPOINTS, err,
                                sizeof err);
    assert_int_equal (n, 1);
    snprintf (expect, sizeof expect, ">ipc://%s/run/front-0-acks.sock", f->data);
    assert_string_equal (list[0], expect);
    rst_topology_endpoints_free (list, n);

    //  Attach real sockets: the recorders bind (their run/ directory is
    //  created), the front connects to all three, and messages flow.
    void *ctx = zmq_ctx_new ();
    void *pulls[3];
    for (int i = 0; i < 3; i++) {
        pulls[i] = zmq_socket (ctx, ZMQ_PULL);
        assert_int_equal (rst_topology_attach (t, pulls[i], "recorder", i, "in", err, sizeof err),
                          0);
    }
    void *push = zmq_socket (ctx, ZMQ_PUSH);
    assert_int_equal (rst_topology_attach (t, push, "front", 0, "events", err, sizeof err), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal (zmq_send (push, "click", 5, 0), 5);
    for (int i = 0; i < 3; i++) {
        char buf[8];
        assert_int_equal (zmq_recv (pulls[i], buf, sizeof buf, 0), 5);
    }
    int linger = 0;
    zmq_setsockopt (push, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close (push);
    for (int i = 0; i < 3; i++)
        zmq_close (pulls[i]);
    zmq_ctx_term (ctx);

    rst_topology_destroy (&t);
    assert_null (t);
    rst_topology_destroy (&t);      //  safe to repeat
}

static void
test_missing_instances_means_one (void **state)
{
    s_fixture_t *f = *state;
    s_write (f, "[solo]\nwhere = >tcp://127.0.0.1:5\n");
    char err[512];
    rst_topology_t *t = rst_topology_load (f->file, f->data, err, sizeof err);
    assert_non_null (t);
    assert_int_equal (rst_topology_instances (t, "solo"), 1);
    rst_topology_destroy (&t);
}

static void
test_prefixes_and_lists (void **state)
{
    s_fixture_t *f = *state;
    s_write (f, "[a]\n"
                "instances = 2\n"
                "pub  = @tcp://127.0.0.1:7000\n"
                "sub  = >tcp://10.0.0.1:7001\n"
                "bare = tcp://10.0.0.2:7002\n"
                "many = b.in, >tcp://10.0.0.3:7003 ,@ipc://{data}/x-{i}.sock\n"
                "[b]\n"
                "instances = 2\n"
                "in = @tcp://host-b:7100\n");
    char err[512] = "";
    rst_topology_t *t = rst_topology_load (f->file, f->data, err, sizeof err);
    assert_non_null (t);
    char *list[RST_TOPOLOGY_MAX_ENDPOINTS];
    int n = rst_topology_endpoints (t, "a", 0, "pub", list, 8, err, sizeof err);
    assert_int_equal (n, 1);
    assert_string_equal (list[0], "@tcp://127.0.0.1:7000");
    rst_topology_endpoints_free (list, n);
    n = rst_topology_endpoints (t, "a", 0, "sub", list, 8, err, sizeof err);
    assert_int_equal (n, 1);
    assert_string_equal (list[0], ">tcp://10.0.0.1:7001");
    rst_topology_endpoints_free (list, n);
    n = rst_topology_endpoints (t, "a", 0, "bare", list, 8, err, sizeof err);
    assert_int_equal (n, 1);
    assert_string_equal (list[0], ">tcp://10.0.0.2:7002");
    rst_topology_endpoints_free (list, n);
    n = rst_topology_endpoints (t, "a", 1, "many", list, 8, err, sizeof err);
    assert_int_equal (n, 4);
    assert_string_equal (list[0], ">tcp://host-b:7100");
    assert_string_equal (list[1], ">tcp://host-b:7100");
    assert_string_equal (list[2], ">tcp://10.0.0.3:7003");
    char expect[PATH_MAX + 32];
    snprintf (expect, sizeof expect, "@ipc://%s/x-1.sock", f->data);
    assert_string_equal (list[3], expect);
    rst_topology_endpoints_free (list, n);
    //  MAX too small, an unknown key, an instance out of range, a non-endpoint.
    assert_int_equal (rst_topology_endpoints (t, "a", 1, "many", list, 2, err, sizeof err), -1);
    assert_non_null (strstr (err, "too many endpoints"));
    assert_int_equal (rst_topology_endpoints (t, "a", 0, "nosuch", list, 8, err, sizeof err), -1);
    assert_non_null (strstr (err, "no 'nosuch' key"));
    assert_int_equal (rst_topology_endpoints (t, "a", 2, "pub", list, 8, err, sizeof err), -1);
    assert_non_null (strstr (err, "instance"));
    assert_int_equal (rst_topology_endpoints (t, "a", 0, "instances", list, 8, err, sizeof err),
                      -1);
    assert_non_null (strstr (err, "topology.ini:2: [a] instances: not an endpoint"));
    rst_topology_destroy (&t);
}

//  A free TCP port on loopback (bind 0, read it back).
static int
s_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    assert_int_equal (bind (fd, (struct sockaddr *) &sin, sizeof sin), 0);
    socklen_t len = sizeof sin;
    assert_int_equal (getsockname (fd, (struct sockaddr *) &sin, &len), 0);
    close (fd);
    return ntohs (sin.sin_port);
}

//  Owners: which node instance each endpoint of a key belongs to.
static void
test_endpoint_owners (void **state)
{
    s_fixture_t *f = *state;
    s_write (f, "[a]\n"
                "many = b.in, >tcp://10.0.0.3:7003, c.acks\n"
                "[b]\n"
                "instances = 2\n"
                "in = @tcp://host-b:7100\n"
                "[c]\n"
                "acks = @tcp://host-c:7200\n");
    char err[512] = "";
    rst_topology_t *t = rst_topology_load (f->file, f->data, err, sizeof err);
    assert_non_null (t);
    rst_topology_owner_t owners[RST_TOPOLOGY_MAX_ENDPOINTS];
    int n = rst_topology_endpoint_owners (t, "a", 0, "many", owners, RST_TOPOLOGY_MAX_ENDPOINTS,
                                          err, sizeof err);
    //  Same count and order as rst_topology_endpoints.
    assert_int_equal (n, 4);
    assert_string_equal (owners[0].node, "b");
    assert_int_equal (owners[0].instance, 0);
    assert_string_equal (owners[1].node, "b");
    assert_int_equal (owners[1].instance, 1);
    assert_string_equal (owners[2].node, "");      //  literal: no owner
    assert_int_equal (owners[2].instance, -1);
    assert_string_equal (owners[3].node, "c");
    assert_int_equal (owners[3].instance, 0);
    //  The same errors as rst_topology_endpoints.
    assert_int_equal (rst_topology_endpoint_owners (t, "a", 0, "many", owners, 3, err, sizeof err),
                      -1);
    assert_non_null (strstr (err, "too many endpoints"));
    assert_int_equal (rst_topology_endpoint_owners (t, "a", 0, "nosuch", owners, 8, err,
                                                    sizeof err), -1);
    rst_topology_destroy (&t);
}

static void
test_tcp_attach (void **state)
{
    s_fixture_t *f = *state;
    char text[512];
    snprintf (text, sizeof text,
              "[sink]\ninstances = 1\nin = @tcp://127.0.0.1:%d\n"
              "[source]\ninstances = 2\nout = sink.in\n",
              s_free_port ());
    s_write (f, text);
    char err[512] = "";
    rst_topology_t *t = rst_topology_load (f->file, f->data, err, sizeof err);
    assert_non_null (t);
    void *ctx = zmq_ctx_new ();
    void *pull = zmq_socket (ctx, ZMQ_PULL);
    assert_int_equal (rst_topology_attach (t, pull, "sink", 0, "in", err, sizeof err), 0);
    void *push[2];
    for (int i = 0; i < 2; i++) {
        push[i] = zmq_socket (ctx, ZMQ_PUSH);
        assert_int_equal (rst_topology_attach (t, push[i], "source", i, "out", err, sizeof err), 0);
        assert_int_equal (zmq_send (push[i], "x", 1, 0), 1);
    }
    char buf[4];
    assert_int_equal (zmq_recv (pull, buf, sizeof buf, 0), 1);
    assert_int_equal (zmq_recv (pull, buf, sizeof buf, 0), 1);
    //  Binding the same port twice fails with the line and libzmq's reason.
    void *again = zmq_socket (ctx, ZMQ_PULL);
    assert_int_equal (rst_topology_attach (t, again, "sink", 0, "in", err, sizeof err), -1);
    assert_non_null (strstr (err, "topology.ini:3: [sink] in: libzmq cannot bind"));
    zmq_close (again);
    for (int i = 0; i < 2; i++)
        zmq_close (push[i]);
    zmq_close (pull);
    zmq_ctx_term (ctx);
    rst_topology_destroy (&t);
}

static void
test_ipc_stale_file_and_long_path (void **state)
{
    s_fixture_t *f = *state;
    s_write (f, "[n]\nin = @ipc://{data}/deep/er/n-{i}.sock\n"
                "long = @ipc://{data}/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n");
    char err[512] = "";
    rst_topology_t *t = rst_topology_load (f->file, f->data, err, sizeof err);
    assert_non_null (t);
    //  A leftover file from a crashed run is replaced on bind.
    char path[PATH_MAX + 32];
    snprintf (path, sizeof path, "%s/deep/er", f->data);
    char cmd[3 * PATH_MAX];
    snprintf (cmd, sizeof cmd, "mkdir -p '%s' && touch '%s/n-0.sock'", path, path);
    assert_int_equal (system (cmd), 0);
    void *ctx = zmq_ctx_new ();
    void *pull = zmq_socket (ctx, ZMQ_PULL);
    assert_int_equal (rst_topology_attach (t, pull, "n", 0, "in", err, sizeof err), 0);
    struct stat st;
    snprintf (path, sizeof path, "%s/deep/er/n-0.sock", f->data);
    assert_int_equal (stat (path, &st), 0);
    assert_true (S_ISSOCK (st.st_mode));
    //  sun_path holds 107 bytes: a longer path gets a clear error.
    void *other = zmq_socket (ctx, ZMQ_PULL);
    assert_int_equal (rst_topology_attach (t, other, "n", 0, "long", err, sizeof err), -1);
    assert_non_null (strstr (err, "shorter RASTRO_DATA_DIR"));
    zmq_close (other);
    zmq_close (pull);
    zmq_ctx_term (ctx);
    rst_topology_destroy (&t);
}

static void
test_bad_files (void **state)
{
    s_fixture_t *f = *state;
    char err[512];
    char missing[PATH_MAX + 16];
    snprintf (missing, sizeof missing, "%s/nosuch.ini", f->dir);
    assert_null (rst_topology_load (missing, f->data, err, sizeof err));
    assert_non_null (strstr (err, "nosuch.ini: cannot open the topology file"));

    s_expect_error (f, "[a]\ninstances = 0\n", "topology.ini:2: [a] instances must be");
    s_expect_error (f, "[a]\ninstances = -1\n", "topology.ini:2:");
    s_expect_error (f, "[a]\ninstances = two\n", "topology.ini:2:");
    s_expect_error (f, "[a]\ninstances = 65\n", "topology.ini:2:");
    s_expect_error (f, "[a]\nx = 1\n\n[b]\nout = c.in\n",
                    "topology.ini:5: [b] out: reference to unknown node 'c'");
    s_expect_error (f, "[a]\nx = 1\n[b]\nout = a.in\n",
                    "topology.ini:4: [b] out: reference to unknown key 'in' of [a]");
    s_expect_error (f, "[a]\nin = @tcp://h:1\n[b]\nout = >tcp://h:2, a.nope\n",
                    "topology.ini:4: [b] out: reference to unknown key 'nope'");
    s_expect_error (f, "[a]\nin = b.out\n[b]\nout = a.in\n", "must be an endpoint");
    s_expect_error (f, "[a]\nj = {data}/{x}\n", "topology.ini:2: [a] j: unknown placeholder");
    s_expect_error (f, "x = 1\n[a]\ny = 2\n", "topology.ini:1: 'x' is outside a [node] section");
    s_expect_error (f, "[a]\nx = 1\nx = 2\n", "topology.ini:3: [a] x is set twice");
    s_expect_error (f, "[a]\nx = 1\nthis is not ini\n", "topology.ini:3: syntax error");
    s_expect_error (f, "[a b]\nx = 1\n", "topology.ini:2: section [a b]");
    s_expect_error (f, "; only a comment\n", "no [node] section");
    char text[400];
    snprintf (text, sizeof text, "[a]\nx = %0300d\n", 1);
    s_expect_error (f, text, "topology.ini:2: line longer than");

    //  {data} without a data directory.
    s_write (f, "[a]\nj = {data}/j\n");
    assert_null (rst_topology_load (f->file, NULL, err, sizeof err));
    assert_non_null (strstr (err, "no data directory"));
}

static void
test_shipped_local_topology (void **state)
{
    (void) state;
    //  topology/local.ini must always load, and its references resolve.
    //  CMake compiles with absolute paths: find the tree from __FILE__.
    const char *src = getenv ("RASTRO_SOURCE_DIR");
    char path[PATH_MAX];
    if (src)
        snprintf (path, sizeof path, "%s/topology/local.ini", src);
    else {
        snprintf (path, sizeof path, "%s", __FILE__);
        char *tail = strstr (path, "tests/unit/");
        assert_non_null (tail);
        snprintf (tail, sizeof path - (size_t) (tail - path), "topology/local.ini");
    }
    char err[512] = "";
    rst_topology_t *t = rst_topology_load (path, "/var/lib/rastro", err, sizeof err);
    if (!t)
        fail_msg ("%s", err);
    assert_true (rst_topology_instances (t, "front") >= 1);
    assert_true (rst_topology_instances (t, "recorder") >= 1);
    char *list[RST_TOPOLOGY_MAX_ENDPOINTS];
    int n = rst_topology_endpoints (t, "front", 0, "events", list, RST_TOPOLOGY_MAX_ENDPOINTS, err,
                                    sizeof err);
    assert_int_equal (n, rst_topology_instances (t, "recorder"));
    rst_topology_endpoints_free (list, n);
    rst_topology_destroy (&t);
}

static void
test_shipped_multihost_example (void **state)
{
    (void) state;
    //  deploy/topology-3hosts.ini: every reference resolves, on tcp.
    const char *src = getenv ("RASTRO_SOURCE_DIR");
    char path[PATH_MAX];
    if (src)
        snprintf (path, sizeof path, "%s/deploy/topology-3hosts.ini", src);
    else {
        snprintf (path, sizeof path, "%s", __FILE__);
        char *tail = strstr (path, "tests/unit/");
        assert_non_null (tail);
        snprintf (tail, sizeof path - (size_t) (tail - path), "deploy/topology-3hosts.ini");
    }
    char err[512] = "";
    rst_topology_t *t = rst_topology_load (path, "/var/lib/rastro", err, sizeof err);
    if (!t)
        fail_msg ("%s", err);
    char *list[RST_TOPOLOGY_MAX_ENDPOINTS];
    int n = rst_topology_endpoints (t, "sender", 1, "acks", list, RST_TOPOLOGY_MAX_ENDPOINTS, err,
                                    sizeof err);
    assert_int_equal (n, 3);    //  both fronts' journals and the bots node's
    assert_string_equal (list[0], ">tcp://edge-0.rastro.internal:7100");
    assert_string_equal (list[1], ">tcp://edge-1.rastro.internal:7100");
    assert_string_equal (list[2], ">tcp://core-1.rastro.internal:7601");
    rst_topology_endpoints_free (list, n);
    n = rst_topology_endpoints (t, "enricher", 1, "limiters", list, RST_TOPOLOGY_MAX_ENDPOINTS,
                                err, sizeof err);
    assert_int_equal (n, 2);
    assert_string_equal (list[1], ">tcp://core-1.rastro.internal:7310");
    rst_topology_endpoints_free (list, n);
    n = rst_topology_endpoints (t, "enricher", 1, "in", list, RST_TOPOLOGY_MAX_ENDPOINTS, err,
                                sizeof err);
    assert_int_equal (n, 1);
    assert_string_equal (list[0], "@tcp://core-1.rastro.internal:7210");
    rst_topology_endpoints_free (list, n);
    rst_topology_destroy (&t);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_tour, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_missing_instances_means_one, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_prefixes_and_lists, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_endpoint_owners, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_tcp_attach, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_ipc_stale_file_and_long_path, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_files, s_setup, s_teardown),
        cmocka_unit_test (test_shipped_local_topology),
        cmocka_unit_test (test_shipped_multihost_example),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
