/*  driver — runs a LLVMFuzzerTestOneInput target without libFuzzer.

    Used by CTest under AddressSanitizer/UBSan: feeds every file of the
    corpus directories given on the command line, then -runs=N inputs made
    by mutating them (byte flips, truncation, insertion, splicing) with a
    fixed seed, so a run is repeatable. For open-ended fuzzing build the same
    target with clang -fsanitize=fuzzer (scripts/fuzz).
*/
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define DRIVER_MAX_INPUT 65536
#define DRIVER_MAX_SEEDS 1024

static uint64_t s_state = 0x9E3779B97F4A7C15ull;

static uint64_t
s_rand (void)
{
    s_state ^= s_state << 13;
    s_state ^= s_state >> 7;
    s_state ^= s_state << 17;
    return s_state;
}

static size_t
s_read_file (const char *path, uint8_t *buf, size_t max)
{
    FILE *f = fopen (path, "rb");
    if (!f)
        return 0;
    size_t n = fread (buf, 1, max, f);
    fclose (f);
    return n;
}

int
main (int argc, char **argv)
{
    long runs = 10000;
    static uint8_t seeds[DRIVER_MAX_SEEDS][512];
    static size_t seed_len[DRIVER_MAX_SEEDS];
    size_t nseeds = 0;
    static uint8_t buf[DRIVER_MAX_INPUT];

    for (int i = 1; i < argc; i++) {
        if (!strncmp (argv[i], "-runs=", 6)) {
            runs = atol (argv[i] + 6);
            continue;
        }
        DIR *dir = opendir (argv[i]);
        if (!dir)
            continue;
        struct dirent *de;
        while ((de = readdir (dir)) && nseeds < DRIVER_MAX_SEEDS) {
            if (de->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf (path, sizeof path, "%s/%s", argv[i], de->d_name);
            size_t n = s_read_file (path, buf, sizeof buf);
            LLVMFuzzerTestOneInput (buf, n);
            if (n > sizeof seeds[0])
                n = sizeof seeds[0];
            memcpy (seeds[nseeds], buf, n);
            seed_len[nseeds++] = n;
        }
        closedir (dir);
    }
    if (nseeds == 0) {
        seed_len[0] = 0;
        nseeds = 1;
    }
    for (long r = 0; r < runs; r++) {
        size_t k = s_rand () % nseeds;
        size_t n = seed_len[k];
        memcpy (buf, seeds[k], n);
        int mutations = 1 + (int) (s_rand () % 8);
        for (int m = 0; m < mutations; m++) {
            switch (s_rand () % 5) {
            case 0:     //  flip a byte
                if (n)
                    buf[s_rand () % n] ^= (uint8_t) (1u << (s_rand () % 8));
                break;
            case 1:     //  random byte
                if (n)
                    buf[s_rand () % n] = (uint8_t) s_rand ();
                break;
            case 2:     //  truncate
                if (n)
                    n = s_rand () % n;
                break;
            case 3:     //  insert a random byte
                if (n < 4096) {
                    size_t at = n ? s_rand () % (n + 1) : 0;
                    memmove (buf + at + 1, buf + at, n - at);
                    buf[at] = (uint8_t) s_rand ();
                    n++;
                }
                break;
            default: {  //  splice another seed's tail
                size_t o = s_rand () % nseeds;
                size_t from = seed_len[o] ? s_rand () % seed_len[o] : 0;
                size_t take = seed_len[o] - from;
                size_t at = n ? s_rand () % n : 0;
                if (at + take < 4096) {
                    memcpy (buf + at, seeds[o] + from, take);
                    n = at + take;
                }
            }
            }
        }
        LLVMFuzzerTestOneInput (buf, n);
    }
    printf ("fuzz driver: %zu seeds, %ld mutated runs, no crash\n", nseeds, runs);
    return 0;
}
