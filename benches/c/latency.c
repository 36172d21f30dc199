/*
 * Single-image latency through the C ABI: a loaded model scoring one 28x28 grey image per
 * call, as an inspection line would. The same measurement as `benches/examples/latency.rs`
 * (same images, same order), for benches/latency.sh.
 *
 * usage: latency MODEL THREADS CALLS
 *
 * Prints one line of JSON: wall-clock median and p99 and on-CPU p99 (the process's CPU time
 * per call, all threads) in milliseconds, and the CPU the process uses per second while the
 * loaded model waits (one second of sleep after the calls).
 */
#define _POSIX_C_SOURCE 200809L
#include "gradcon.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define PIXELS (28 * 28)
#define IMAGES 64

static double seconds(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The value at quantile q of n sorted values: the smallest with at least q n at or below it. */
static double quantile(const double *sorted, size_t n, double q) {
    size_t rank = (size_t)(q * (double)n + 0.999999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: latency MODEL THREADS CALLS\n");
        return 2;
    }
    unsigned threads = (unsigned)strtoul(argv[2], NULL, 10);
    size_t calls = (size_t)strtoull(argv[3], NULL, 10);
    if (calls == 0) {
        fprintf(stderr, "latency: CALLS must be at least 1\n");
        return 2;
    }
    gradcon_detector *d = NULL;
    if (gradcon_load(argv[1], &d) != GRADCON_OK ||
        gradcon_set_threads(d, threads) != GRADCON_OK) {
        fprintf(stderr, "latency: %s\n", gradcon_last_error());
        gradcon_free(d);
        return 1;
    }
    /* The images of latency.rs: bytes of a 64-bit LCG's high bits. */
    static uint8_t pixels[IMAGES][PIXELS];
    uint64_t state = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < IMAGES; i++)
        for (size_t j = 0; j < PIXELS; j++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            pixels[i][j] = (uint8_t)(state >> 56);
        }
    double *wall = malloc(calls * sizeof *wall), *cpu = malloc(calls * sizeof *cpu);
    if (!wall || !cpu) {
        fprintf(stderr, "latency: out of memory\n");
        return 1;
    }
    gradcon_result r;
    double sink = 0;
    for (size_t i = 0; i < calls / 10; i++) {
        if (gradcon_score(d, pixels[i % IMAGES], PIXELS, 1, 28, 28, GRADCON_PLANAR, &r) !=
            GRADCON_OK) {
            fprintf(stderr, "latency: %s\n", gradcon_last_error());
            return 1;
        }
        sink += r.gradcon;
    }
    for (size_t i = 0; i < calls; i++) {
        double c0 = seconds(CLOCK_PROCESS_CPUTIME_ID), t0 = seconds(CLOCK_MONOTONIC);
        if (gradcon_score(d, pixels[i % IMAGES], PIXELS, 1, 28, 28, GRADCON_PLANAR, &r) !=
            GRADCON_OK) {
            fprintf(stderr, "latency: %s\n", gradcon_last_error());
            return 1;
        }
        wall[i] = 1e3 * (seconds(CLOCK_MONOTONIC) - t0);
        cpu[i] = 1e3 * (seconds(CLOCK_PROCESS_CPUTIME_ID) - c0);
        sink += r.gradcon;
    }
    double c0 = seconds(CLOCK_PROCESS_CPUTIME_ID), t0 = seconds(CLOCK_MONOTONIC);
    struct timespec second = {1, 0};
    nanosleep(&second, NULL);
    double idle = 1e3 * (seconds(CLOCK_PROCESS_CPUTIME_ID) - c0) / (seconds(CLOCK_MONOTONIC) - t0);
    qsort(wall, calls, sizeof *wall, by_value);
    qsort(cpu, calls, sizeof *cpu, by_value);
    printf("{\"api\": \"c\", \"threads\": %u, \"calls\": %zu, \"latency_ms_p50\": %.4f, "
           "\"latency_ms_p99\": %.4f, \"latency_cpu_ms_p99\": %.4f, \"idle_cpu_ms_per_s\": %.4f, "
           "\"checksum\": %.6f}\n",
           threads, calls, quantile(wall, calls, 0.5), quantile(wall, calls, 0.99),
           quantile(cpu, calls, 0.99), idle, sink);
    free(wall);
    free(cpu);
    gradcon_free(d);
    return 0;
}
