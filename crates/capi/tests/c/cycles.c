/*
 * Loads, scores with and frees a model many times in one process, and prints what that left
 * behind: the resident memory and the threads, for tests/c_abi.rs to check.
 *
 * usage: cycles MODEL IMAGES CYCLES
 *   MODEL   a model file
 *   IMAGES  raw 28x28 grey images, image after image (at least 8)
 *   CYCLES  load, score and free cycles; every other one gives the detector two workers of
 *           its own (gradcon_set_threads), the others score on the process-wide pool
 *
 * Output, one record a line:
 *   info NAME VALUE   rss_start_kb (before the first load), rss_first_kb (after the first two
 *                     cycles and malloc_trim(0), which returns the freed memory glibc keeps for
 *                     reuse), rss_end_kb (after the last cycle), rss_trimmed_kb (after that and
 *                     malloc_trim(0)), threads (the process's, with the process-wide pool
 *                     started), listed (frees after which a worker was still listed in
 *                     /proc/self/task), settle_us (the longest such a worker took to go)
 *   done CHECKS
 * A failed check goes to stderr and the exit code is 1.
 */
#define _GNU_SOURCE
#include "gradcon.h"

#include <dirent.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PIXELS (28 * 28)
#define BATCH 8

static int checks = 0;
static int failures = 0;

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        checks++;                                                                          \
        if (!(cond)) {                                                                     \
            failures++;                                                                    \
            fprintf(stderr, "cycles.c:%d: check `%s` failed: ", __LINE__, #cond);          \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
        }                                                                                  \
    } while (0)

/* Resident memory in KiB (/proc/self/statm). */
static long rss_kb(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &pages, &resident) != 2) {
        fprintf(stderr, "cycles.c: cannot read /proc/self/statm\n");
        exit(2);
    }
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* The process's threads (/proc/self/task). */
static int threads(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) {
        fprintf(stderr, "cycles.c: cannot open /proc/self/task\n");
        exit(2);
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static long now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000L + t.tv_nsec / 1000;
}

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cycles.c: cannot open %s\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(*len);
    if (!buf || fread(buf, 1, *len, f) != *len) {
        fprintf(stderr, "cycles.c: cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    return buf;
}

/* One cycle: load, (own workers), score one image and a batch, free. */
static void cycle(const char *model, const gradcon_image *batch, int own_workers) {
    gradcon_detector *d = NULL;
    CHECK(gradcon_load(model, &d) == GRADCON_OK, "gradcon_load: %s", gradcon_last_error());
    if (!d)
        exit(1);
    if (own_workers)
        CHECK(gradcon_set_threads(d, 2) == GRADCON_OK, "set_threads: %s", gradcon_last_error());
    gradcon_result one, many[BATCH];
    CHECK(gradcon_score(d, batch[0].pixels, PIXELS, 1, 28, 28, GRADCON_PLANAR, &one) ==
              GRADCON_OK,
          "gradcon_score: %s", gradcon_last_error());
    CHECK(gradcon_score_batch(d, batch, BATCH, many) == GRADCON_OK, "gradcon_score_batch: %s",
          gradcon_last_error());
    CHECK(memcmp(&one, &many[0], sizeof one) == 0, "alone and in the batch differ");
    gradcon_free(d);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL IMAGES CYCLES\n", argv[0]);
        return 2;
    }
    const char *model = argv[1];
    long cycles = strtol(argv[3], NULL, 10);
    size_t len;
    uint8_t *images = read_file(argv[2], &len);
    if (len < BATCH * PIXELS || cycles < 2) {
        fprintf(stderr, "cycles.c: need %d images and 2 cycles\n", BATCH);
        return 2;
    }
    gradcon_image batch[BATCH];
    for (int i = 0; i < BATCH; i++)
        batch[i] = (gradcon_image){images + (size_t)i * PIXELS, PIXELS, 1, 28, 28, GRADCON_PLANAR};

    long rss_start = rss_kb();
    /* The first cycles start the process-wide pool, whose workers stay. */
    cycle(model, batch, 0);
    cycle(model, batch, 1);
    int before = threads();
    malloc_trim(0);
    long rss_first = rss_kb();
    long listed = 0, settle = 0;
    for (long i = 2; i < cycles; i++) {
        int own = i % 2;
        cycle(model, batch, own);
        if (threads() == before)
            continue;
        listed++;
        long start = now_us();
        while (threads() != before && now_us() - start < 1000000)
            ;
        long took = now_us() - start;
        settle = took > settle ? took : settle;
        CHECK(threads() == before, "cycle %ld: %d threads a second after gradcon_free, %d before",
              i, threads(), before);
    }
    long rss_end = rss_kb();
    malloc_trim(0);
    long rss_trimmed = rss_kb();
    printf("info rss_start_kb %ld\ninfo rss_first_kb %ld\ninfo rss_end_kb %ld\n", rss_start,
           rss_first, rss_end);
    printf("info rss_trimmed_kb %ld\ninfo threads %d\ninfo listed %ld\ninfo settle_us %ld\n",
           rss_trimmed, before, listed, settle);
    free(images);
    printf("done %d\n", checks);
    if (failures) {
        fprintf(stderr, "cycles.c: %d of %d checks failed\n", failures, checks);
        return 1;
    }
    return 0;
}
