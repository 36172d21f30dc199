/*
 * Drives every function of gradcon.h and prints what it got, for tests/c_abi.rs to compare
 * with the Rust API bit for bit.
 *
 * usage: score MODEL IMAGES THREADS [WORKER_IMAGES]
 *   MODEL          a model file (loaded from its path and, read here, from bytes)
 *   IMAGES         raw 28x28 grey images, image after image (at least 6)
 *   THREADS        the detectors' worker threads (gradcon_set_threads)
 *   WORKER_IMAGES  how many of the batch's images each of the threads that score the same
 *                  detector at once scores (default: all; fewer keeps valgrind quick)
 *
 * Output, one record a line (numbers %.17g, which reads back to the same double):
 *   info NAME VALUE
 *   score NAME gradcon recon grad anomaly_score threshold anomalous
 *   batch INDEX gradcon recon grad anomaly_score threshold anomalous
 *   error CASE STATUS STATUS_NAME MESSAGE
 *   done CHECKS
 * The program checks what it can itself (statuses, invariants of a result, planar = interleaved,
 * path = bytes, concurrent = sequential); a failed check goes to stderr and the exit code is 1.
 */
#include "gradcon.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIDE 28
#define PIXELS (SIDE * SIDE)
#define SPECIAL 5 /* images built from the file's first six, ahead of the batch */
#define WORKERS 2 /* threads scoring the same detector at once */

static int checks = 0;
static int failures = 0;

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        checks++;                                                                          \
        if (!(cond)) {                                                                     \
            failures++;                                                                    \
            fprintf(stderr, "score.c:%d: check `%s` failed: ", __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
        }                                                                                  \
    } while (0)

static void *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "score.c: cannot open %s\n", path);
        exit(2);
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            unsigned char *bigger = realloc(buf, cap *= 2);
            if (!bigger)
                free(buf);
            buf = bigger;
        }
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "score.c: out of memory reading %s\n", path);
        exit(2);
    }
    *len = n;
    return buf;
}

/* The invariants every result holds. */
static void check_result(const char *what, const gradcon_result *r) {
    CHECK(isfinite(r->gradcon) && isfinite(r->recon) && isfinite(r->grad), "%s: not finite",
          what);
    CHECK(r->anomaly_score == -r->gradcon, "%s: anomaly_score %.17g, gradcon %.17g", what,
          r->anomaly_score, r->gradcon);
    if (isnan(r->threshold)) {
        CHECK(r->anomalous == -1, "%s: anomalous %d without a threshold", what, (int)r->anomalous);
    } else {
        CHECK(r->anomalous == (r->anomaly_score > r->threshold), "%s: anomalous %d, score %.17g, "
              "threshold %.17g", what, (int)r->anomalous, r->anomaly_score, r->threshold);
    }
    int zero = r->reserved_i32 == 0;
    for (int i = 0; i < 6; i++)
        zero = zero && r->reserved[i] == 0.0;
    CHECK(zero, "%s: reserved fields not zero", what);
}

static void print_result(const char *kind, const char *name, const gradcon_result *r) {
    printf("%s %s %.17g %.17g %.17g %.17g %.17g %d\n", kind, name, r->gradcon, r->recon, r->grad,
           r->anomaly_score, r->threshold, (int)r->anomalous);
}

static void score_one(const gradcon_detector *d, const char *name, const uint8_t *px,
                      size_t len, uint32_t c, uint32_t h, uint32_t w, gradcon_layout layout,
                      gradcon_result *r) {
    memset(r, 0xAB, sizeof *r); /* the reserved fields must come back zero */
    gradcon_status st = gradcon_score(d, px, len, c, h, w, layout, r);
    CHECK(st == GRADCON_OK, "%s: status %s: %s", name, gradcon_status_str(st),
          gradcon_last_error());
    check_result(name, r);
    print_result("score", name, r);
}

/* Prints a failed call and checks its status and that its message holds `needle`. */
static void expect_error(const char *name, gradcon_status got, gradcon_status want,
                         const char *needle) {
    const char *msg = gradcon_last_error();
    printf("error %s %d %s %s\n", name, (int)got, gradcon_status_str(got), msg);
    CHECK(got == want, "%s: status %s, %s expected", name, gradcon_status_str(got),
          gradcon_status_str(want));
    CHECK(strstr(msg, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", name, msg, needle);
}

struct batch {
    const gradcon_detector *detector;
    const gradcon_image *images;
    size_t count;
    const gradcon_result *expected;
    int ok;
};

/* One of the threads that score the same detector at once. */
static void *score_concurrently(void *arg) {
    struct batch *b = arg;
    b->ok = 1;
    if (gradcon_last_error()[0] != '\0') {
        fprintf(stderr, "score.c: a fresh thread's last error is \"%s\"\n", gradcon_last_error());
        b->ok = 0;
    }
    gradcon_result *out = calloc(b->count, sizeof *out);
    if (!out || gradcon_score_batch(b->detector, b->images, b->count, out) != GRADCON_OK ||
        memcmp(out, b->expected, b->count * sizeof *out) != 0) {
        fprintf(stderr, "score.c: a concurrent batch differs or failed: %s\n",
                gradcon_last_error());
        b->ok = 0;
    }
    free(out);
    gradcon_result r;
    uint8_t px[4] = {0};
    if (gradcon_score(b->detector, px, 4, 2, 1, 2, GRADCON_PLANAR, &r) !=
            GRADCON_ERR_INVALID_ARGUMENT ||
        strstr(gradcon_last_error(), "channels is 2") == NULL) {
        fprintf(stderr, "score.c: a worker's own error is wrong: \"%s\"\n", gradcon_last_error());
        b->ok = 0;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s MODEL IMAGES THREADS [WORKER_IMAGES]\n", argv[0]);
        return 2;
    }
    const char *model_path = argv[1];
    uint32_t threads = (uint32_t)strtoul(argv[3], NULL, 10);
    size_t images_len;
    uint8_t *images = read_file(argv[2], &images_len);
    size_t count = images_len / PIXELS;
    if (count < 6 || images_len % PIXELS != 0) {
        fprintf(stderr, "score.c: %s holds %zu bytes, not 6 or more 28x28 images\n", argv[2],
                images_len);
        return 2;
    }

    /* Versions. */
    printf("info abi_version %u\n", (unsigned)gradcon_abi_version());
    printf("info version %s\n", gradcon_version());
    CHECK(gradcon_abi_version() == GRADCON_ABI_VERSION, "library ABI %u, header ABI %d",
          (unsigned)gradcon_abi_version(), GRADCON_ABI_VERSION);
    CHECK(gradcon_last_error()[0] == '\0', "last error before any call: \"%s\"",
          gradcon_last_error());

    /* The model, from its path and from bytes. */
    gradcon_detector *from_path = NULL, *from_bytes = NULL;
    gradcon_status st = gradcon_load(model_path, &from_path);
    CHECK(st == GRADCON_OK && from_path != NULL, "gradcon_load: %s", gradcon_last_error());
    size_t model_len;
    uint8_t *model = read_file(model_path, &model_len);
    st = gradcon_load_bytes(model, model_len, &from_bytes);
    CHECK(st == GRADCON_OK && from_bytes != NULL, "gradcon_load_bytes: %s",
          gradcon_last_error());
    if (!from_path || !from_bytes)
        return 1;
    CHECK(gradcon_set_threads(from_path, threads) == GRADCON_OK, "set_threads: %s",
          gradcon_last_error());
    CHECK(gradcon_set_threads(from_bytes, threads) == GRADCON_OK, "set_threads: %s",
          gradcon_last_error());
    uint32_t channels = 0, side = 0;
    CHECK(gradcon_channels(from_bytes, &channels) == GRADCON_OK, "channels: %s",
          gradcon_last_error());
    CHECK(gradcon_input_side(from_bytes, &side) == GRADCON_OK, "input_side: %s",
          gradcon_last_error());
    printf("info channels %u\ninfo input_side %u\n", (unsigned)channels, (unsigned)side);

    /* The images: the file's first six make the special ones. */
    const uint8_t *img[6];
    for (int k = 0; k < 6; k++)
        img[k] = images + (size_t)k * PIXELS;
    uint8_t rgb_interleaved[3 * PIXELS], rgb_planar[3 * PIXELS], grey_40x32[40 * 32];
    for (int p = 0; p < PIXELS; p++)
        for (int c = 0; c < 3; c++) {
            rgb_interleaved[3 * p + c] = img[2 + c][p];
            rgb_planar[c * PIXELS + p] = img[2 + c][p];
        }
    for (int y = 0; y < 40; y++)
        for (int x = 0; x < 32; x++)
            grey_40x32[y * 32 + x] = img[5][(y * SIDE / 40) * SIDE + x * SIDE / 32];

    /* Single images. */
    gradcon_result by_path, r, rgb_i, rgb_p;
    score_one(from_path, "path/grey_planar", img[0], PIXELS, 1, 28, 28, GRADCON_PLANAR,
              &by_path);
    score_one(from_bytes, "bytes/grey_planar", img[0], PIXELS, 1, 28, 28, GRADCON_PLANAR, &r);
    CHECK(memcmp(&r, &by_path, sizeof r) == 0, "the model from bytes scores otherwise");
    score_one(from_bytes, "bytes/grey_interleaved", img[1], PIXELS, 1, 28, 28,
              GRADCON_INTERLEAVED, &r);
    score_one(from_bytes, "bytes/rgb_interleaved", rgb_interleaved, 3 * PIXELS, 3, 28, 28,
              GRADCON_INTERLEAVED, &rgb_i);
    score_one(from_bytes, "bytes/rgb_planar", rgb_planar, 3 * PIXELS, 3, 28, 28, GRADCON_PLANAR,
              &rgb_p);
    CHECK(memcmp(&rgb_i, &rgb_p, sizeof r) == 0, "RGB planar and interleaved score otherwise");
    score_one(from_bytes, "bytes/grey_40x32", grey_40x32, 40 * 32, 1, 40, 32, GRADCON_PLANAR,
              &r);

    /* A batch: the special images, then every image of the file. */
    size_t n = SPECIAL + count;
    gradcon_image *batch = calloc(n, sizeof *batch);
    gradcon_result *results = calloc(n, sizeof *results);
    if (!batch || !results)
        return 2;
    batch[0] = (gradcon_image){img[0], PIXELS, 1, 28, 28, GRADCON_PLANAR};
    batch[1] = (gradcon_image){img[1], PIXELS, 1, 28, 28, GRADCON_INTERLEAVED};
    batch[2] = (gradcon_image){rgb_interleaved, 3 * PIXELS, 3, 28, 28, GRADCON_INTERLEAVED};
    batch[3] = (gradcon_image){rgb_planar, 3 * PIXELS, 3, 28, 28, GRADCON_PLANAR};
    batch[4] = (gradcon_image){grey_40x32, 40 * 32, 1, 40, 32, GRADCON_PLANAR};
    for (size_t k = 0; k < count; k++)
        batch[SPECIAL + k] =
            (gradcon_image){images + k * PIXELS, PIXELS, 1, 28, 28, GRADCON_PLANAR};
    memset(results, 0xAB, n * sizeof *results);
    st = gradcon_score_batch(from_bytes, batch, n, results);
    CHECK(st == GRADCON_OK, "gradcon_score_batch: %s", gradcon_last_error());
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "%zu", i);
        check_result(name, &results[i]);
        print_result("batch", name, &results[i]);
    }
    CHECK(gradcon_score_batch(from_bytes, NULL, 0, NULL) == GRADCON_OK, "an empty batch: %s",
          gradcon_last_error());
    /* Each image of the batch scores alone as it did in the batch, to the bit. */
    for (size_t i = 0; i < n; i++) {
        const gradcon_image *b = &batch[i];
        gradcon_result one;
        CHECK(gradcon_score(from_bytes, b->pixels, b->len, b->channels, b->height, b->width,
                            b->layout, &one) == GRADCON_OK,
              "image %zu alone: %s", i, gradcon_last_error());
        CHECK(memcmp(&one, &results[i], sizeof one) == 0,
              "image %zu scores %.17g alone, %.17g in the batch", i, one.gradcon,
              results[i].gradcon);
    }

    /* Error paths. Failed calls leave out-parameters as they were (loads set *out = NULL). */
    char dummy;
    gradcon_detector *d = (gradcon_detector *)(void *)&dummy;
    expect_error("load_null_path", gradcon_load(NULL, &d), GRADCON_ERR_NULL_ARGUMENT,
                 "gradcon_load: `path` is NULL");
    CHECK(d == NULL, "a failed gradcon_load left *out set");
    expect_error("load_null_out", gradcon_load(model_path, NULL), GRADCON_ERR_NULL_ARGUMENT,
                 "`out` is NULL");
    d = (gradcon_detector *)(void *)&dummy;
    expect_error("load_missing_file", gradcon_load("no-such-dir/missing-model.gcm", &d),
                 GRADCON_ERR_IO, "no-such-dir/missing-model.gcm");
    CHECK(d == NULL, "a failed gradcon_load left *out set");
    expect_error("load_folder", gradcon_load(".", &d), GRADCON_ERR_IO,
                 "gradcon_load: .: open failed: ");
    CHECK(d == NULL, "a failed gradcon_load left *out set");
    expect_error("load_not_a_model", gradcon_load(argv[2], &d), GRADCON_ERR_FORMAT,
                 "not a GradCon model, checkpoint or safetensors file");
    expect_error("load_bytes_null", gradcon_load_bytes(NULL, 10, &d), GRADCON_ERR_NULL_ARGUMENT,
                 "`bytes` is NULL");
    const char garbage[] = "not a model file at all";
    expect_error("load_bytes_garbage",
                 gradcon_load_bytes((const uint8_t *)garbage, sizeof garbage, &d),
                 GRADCON_ERR_FORMAT, "gradcon_load_bytes: model bytes: ");
    expect_error("load_bytes_truncated", gradcon_load_bytes(model, model_len / 2, &d),
                 GRADCON_ERR_FORMAT, "gradcon_load_bytes: model bytes: ");
    CHECK(d == NULL, "a failed gradcon_load_bytes left *out set");

    gradcon_result untouched, before;
    memset(&untouched, 0x5A, sizeof untouched);
    memcpy(&before, &untouched, sizeof before);
    expect_error("score_null_detector",
                 gradcon_score(NULL, img[0], PIXELS, 1, 28, 28, GRADCON_PLANAR, &untouched),
                 GRADCON_ERR_NULL_ARGUMENT, "`detector` is NULL");
    expect_error("score_null_pixels",
                 gradcon_score(from_bytes, NULL, PIXELS, 1, 28, 28, GRADCON_PLANAR, &untouched),
                 GRADCON_ERR_NULL_ARGUMENT, "`pixels` is NULL");
    expect_error("score_null_out",
                 gradcon_score(from_bytes, img[0], PIXELS, 1, 28, 28, GRADCON_PLANAR, NULL),
                 GRADCON_ERR_NULL_ARGUMENT, "`out` is NULL");
    expect_error("score_short_len",
                 gradcon_score(from_bytes, img[0], PIXELS - 1, 1, 28, 28, GRADCON_PLANAR,
                               &untouched),
                 GRADCON_ERR_INVALID_ARGUMENT, "len is 783, but channels 1 x height 28 x width 28 needs 784 bytes");
    expect_error("score_channels_2",
                 gradcon_score(from_bytes, img[0], 2 * 392, 2, 28, 14, GRADCON_PLANAR, &untouched),
                 GRADCON_ERR_INVALID_ARGUMENT, "channels is 2");
    expect_error("score_zero_height",
                 gradcon_score(from_bytes, img[0], 0, 1, 0, 28, GRADCON_PLANAR, &untouched),
                 GRADCON_ERR_INVALID_ARGUMENT, "height x width is 0x28");
    expect_error("score_bad_layout",
                 gradcon_score(from_bytes, rgb_planar, 3 * PIXELS, 3, 28, 28,
                               (gradcon_layout)7, &untouched),
                 GRADCON_ERR_INVALID_ARGUMENT, "layout is 7");
    uint8_t *huge = calloc((size_t)4097 * 4096, 1);
    if (!huge)
        return 2;
    expect_error("score_too_large",
                 gradcon_score(from_bytes, huge, (size_t)4097 * 4096, 1, 4097, 4096,
                               GRADCON_PLANAR, &untouched),
                 GRADCON_ERR_INVALID_ARGUMENT, "more than the limit");
    free(huge);
    CHECK(memcmp(&untouched, &before, sizeof before) == 0, "a failed gradcon_score wrote *out");

    expect_error("batch_null_images", gradcon_score_batch(from_bytes, NULL, 2, results),
                 GRADCON_ERR_NULL_ARGUMENT, "`images` is NULL");
    expect_error("batch_null_out", gradcon_score_batch(from_bytes, batch, 2, NULL),
                 GRADCON_ERR_NULL_ARGUMENT, "`out` is NULL");
    gradcon_image bad[3] = {batch[0], batch[0], batch[0]};
    bad[2].len = 10;
    expect_error("batch_bad_image", gradcon_score_batch(from_bytes, bad, 3, results),
                 GRADCON_ERR_INVALID_ARGUMENT, "gradcon_score_batch: image 2: len is 10");
    bad[2] = batch[0];
    bad[1].pixels = NULL;
    expect_error("batch_null_pixels", gradcon_score_batch(from_bytes, bad, 3, results),
                 GRADCON_ERR_NULL_ARGUMENT, "image 1: `pixels` is NULL");

    expect_error("threads_0", gradcon_set_threads(from_bytes, 0), GRADCON_ERR_INVALID_ARGUMENT,
                 "threads is 0; 1 to 256 expected");
    expect_error("threads_257", gradcon_set_threads(from_bytes, 257),
                 GRADCON_ERR_INVALID_ARGUMENT, "threads is 257");
    expect_error("threads_null", gradcon_set_threads(NULL, 1), GRADCON_ERR_NULL_ARGUMENT,
                 "`detector` is NULL");
    expect_error("channels_null_detector", gradcon_channels(NULL, &channels),
                 GRADCON_ERR_NULL_ARGUMENT, "`detector` is NULL");
    expect_error("input_side_null_out", gradcon_input_side(from_bytes, NULL),
                 GRADCON_ERR_NULL_ARGUMENT, "gradcon_input_side: `out` is NULL");

    /* A successful call leaves the last message as it was. */
    char kept[256];
    snprintf(kept, sizeof kept, "%s", gradcon_last_error());
    CHECK(gradcon_channels(from_bytes, &channels) == GRADCON_OK, "channels: %s",
          gradcon_last_error());
    CHECK(strcmp(kept, gradcon_last_error()) == 0, "a success changed the last error to \"%s\"",
          gradcon_last_error());

    /* Status names. */
    CHECK(strcmp(gradcon_status_str(GRADCON_OK), "GRADCON_OK") == 0, "status name");
    CHECK(strcmp(gradcon_status_str(GRADCON_ERR_INTERNAL), "GRADCON_ERR_INTERNAL") == 0,
          "status name");
    CHECK(strcmp(gradcon_status_str((gradcon_status)99), "unknown status") == 0, "status name");

    /* Several threads scoring one detector at once get the scores one thread gets alone; each
     * has its own last error, and theirs leave this thread's alone. (A part of the batch above
     * scores as it did there: a score does not depend on the other images of its call.) */
    size_t worker_images = argc == 5 ? (size_t)strtoul(argv[4], NULL, 10) : n;
    if (worker_images < 1 || worker_images > n)
        worker_images = n;
    pthread_t tid[WORKERS];
    struct batch work[WORKERS];
    for (int t = 0; t < WORKERS; t++) {
        work[t] = (struct batch){from_bytes, batch, worker_images, results, 0};
        CHECK(pthread_create(&tid[t], NULL, score_concurrently, &work[t]) == 0, "pthread_create");
    }
    for (int t = 0; t < WORKERS; t++) {
        pthread_join(tid[t], NULL);
        CHECK(work[t].ok, "worker %d", t);
    }
    CHECK(strcmp(kept, gradcon_last_error()) == 0, "another thread changed this one's error");

    gradcon_free(from_path);
    gradcon_free(from_bytes);
    gradcon_free(NULL);
    free(batch);
    free(results);
    free(model);
    free(images);
    printf("done %d\n", checks);
    if (failures) {
        fprintf(stderr, "score.c: %d of %d checks failed\n", failures, checks);
        return 1;
    }
    return 0;
}
