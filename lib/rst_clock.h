/*  rst_clock — the two clocks every node uses.

    Wall clock (CLOCK_REALTIME) for times that leave the process: event
    times, journal birth stamps, heartbeats. Monotonic clock for durations
    and deadlines inside one process. Header-only; each call is one
    clock_gettime (a vDSO call, no system call).
*/
#ifndef RST_CLOCK_H
#define RST_CLOCK_H

#include <stdint.h>
#include <time.h>

//  Unix time in milliseconds.
static inline int64_t
rst_clock_wall_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  Monotonic time in nanoseconds (arbitrary origin).
static inline uint64_t
rst_clock_mono_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

//  Monotonic time in milliseconds (arbitrary origin).
static inline int64_t
rst_clock_mono_ms (void)
{
    return (int64_t) (rst_clock_mono_ns () / 1000000ull);
}

#endif
