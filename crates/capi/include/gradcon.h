/*
 * gradcon.h - C API of the GradCon anomaly detector (libgradcon).
 *
 * Load a trained model (a `.gcm` model file, a training checkpoint or a `.safetensors` file),
 * then score 8-bit images of any size, grey or RGB:
 *
 *     gradcon_detector *d = NULL;
 *     if (gradcon_load("fashion-mnist-0.gcm", &d) != GRADCON_OK) {
 *         fprintf(stderr, "%s\n", gradcon_last_error());
 *         return 1;
 *     }
 *     gradcon_result r;
 *     if (gradcon_score(d, pixels, 28 * 28, 1, 28, 28, GRADCON_PLANAR, &r) == GRADCON_OK)
 *         printf("gradcon %.6f, anomaly score %.6f\n", r.gradcon, r.anomaly_score);
 *     gradcon_free(d);
 *
 * Conventions
 *   - gradcon = recon + beta * grad; HIGHER gradcon means MORE NORMAL (like the training data).
 *     recon is minus the mean squared reconstruction error, grad the mean cosine between the
 *     image's decoder-weight gradients and the model's reference gradients.
 *   - anomaly_score = -gradcon: higher means more anomalous.
 *   - Images are brought to the model's input inside the library, as the `gradcon` command
 *     does: RGB becomes grey for a 1-channel model (ITU-R 601-2 luma, PIL's convert("L")),
 *     grey is replicated for a 3-channel model, any other size than the model's 28 x 28 is
 *     resized with PIL's antialiasing Lanczos filter (stretched), values become v / 255.
 *
 * Errors
 *   Every call that can fail returns a gradcon_status. On failure, gradcon_last_error() gives a
 *   message naming the function and what was wrong (the file, the argument, the expected and
 *   found values). Out-parameters are not written on failure, except that gradcon_load and
 *   gradcon_load_bytes set *out to NULL (when out itself is not NULL), and gradcon_score_batch
 *   may have written some entries of out. No Rust panic ever crosses this boundary: one is
 *   caught and reported as GRADCON_ERR_INTERNAL (the library must be built with the default
 *   panic = "unwind").
 *
 * Ownership
 *   A gradcon_detector is created by gradcon_load / gradcon_load_bytes and owned by the
 *   caller, who releases it with gradcon_free exactly once. The library keeps no pointer to
 *   anything the caller passes (paths, model bytes, pixels, image arrays): they are read during
 *   the call only. Strings returned by the library (gradcon_version, gradcon_status_str,
 *   gradcon_last_error) are static or thread-local and must NOT be freed.
 *
 * Thread safety
 *   A detector may be used for scoring (gradcon_score, gradcon_score_batch, gradcon_channels,
 *   gradcon_input_side) from many threads at once. gradcon_set_threads and gradcon_free change
 *   or destroy the detector: they must not run at the same time as any other call on the same
 *   detector. gradcon_last_error is per thread.
 *
 * Threads inside the library
 *   Scoring runs its parallel kernels on the detector's own pool of workers once
 *   gradcon_set_threads has been called; before that, on a process-wide pool created on first
 *   use with one worker per CPU (its size can be set with the RAYON_NUM_THREADS environment
 *   variable before that first use). The environment variable GRADCON_ISA=scalar|avx2|avx512,
 *   read once per process, lowers the SIMD instruction set the kernels use.
 */
#ifndef GRADCON_H
#define GRADCON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header's ABI. gradcon_abi_version() returns the library's; a program
 * should refuse to run when the two differ. */
#define GRADCON_ABI_VERSION 1

/* What a call returned. */
typedef enum gradcon_status {
    GRADCON_OK = 0,
    /* A pointer argument that must not be NULL was NULL. */
    GRADCON_ERR_NULL_ARGUMENT = 1,
    /* An argument out of range: channels not 1 or 3, an empty or too large image, a length
     * that does not match channels x height x width, an unknown layout, a thread count out
     * of 1..256. */
    GRADCON_ERR_INVALID_ARGUMENT = 2,
    /* A file could not be read (the message names it and gives the system's reason). */
    GRADCON_ERR_IO = 3,
    /* Model bytes that break their format: wrong magic, truncated, bad checksum, NaN
     * weights, ... (the message names the file, or "model bytes" for gradcon_load_bytes). */
    GRADCON_ERR_FORMAT = 4,
    /* A bug inside the library (a caught panic or an impossible state). */
    GRADCON_ERR_INTERNAL = 5,
    GRADCON_STATUS_FORCE_32_BIT = 0x7fffffff
} gradcon_status;

/* How the 8-bit pixels of an image are ordered. For a grey image (1 channel) both are the
 * same. Rows are top to bottom, pixels left to right, 0 black to 255 white. */
typedef enum gradcon_layout {
    /* HWC: pixel after pixel, each pixel's channels together (R G B R G B ...), as most
     * decoders return them. */
    GRADCON_INTERLEAVED = 0,
    /* CHW: plane after plane (all R, then all G, then all B). */
    GRADCON_PLANAR = 1,
    GRADCON_LAYOUT_FORCE_32_BIT = 0x7fffffff
} gradcon_layout;

/* A loaded model. Opaque: create with gradcon_load or gradcon_load_bytes, release with
 * gradcon_free. */
typedef struct gradcon_detector gradcon_detector;

/* One image for gradcon_score_batch: `len` bytes at `pixels`, which must equal
 * channels x height x width. channels is 1 (grey) or 3 (RGB); height and width at least 1,
 * height x width at most 2^24. */
typedef struct gradcon_image {
    const uint8_t *pixels;
    size_t len;
    uint32_t channels;
    uint32_t height;
    uint32_t width;
    gradcon_layout layout;
} gradcon_image;

/* The score of one image. 96 bytes; the layout is fixed for GRADCON_ABI_VERSION 1. */
typedef struct gradcon_result {
    /* The GradCon score recon + beta * grad: higher = more normal. */
    double gradcon;
    /* The reconstruction term: minus the image's mean squared reconstruction error. */
    double recon;
    /* The gradient term: mean cosine between the image's decoder-weight gradients and the
     * reference gradients (0 if the model has none). */
    double grad;
    /* -gradcon: higher = more anomalous. */
    double anomaly_score;
    /* The decision threshold on anomaly_score stored with the model (calibrated on normal
     * validation images at a false-positive rate, for the model's beta); NaN when the model
     * has none (trained without validation images, or before thresholds were stored). */
    double threshold;
    /* 1 if anomaly_score > threshold, 0 if not, -1 when unknown (no threshold). */
    int32_t anomalous;
    /* Room for later fields without changing the struct's size or the offsets above: the
     * library sets these to zero; do not read or rely on them. */
    int32_t reserved_i32;
    double reserved[6];
} gradcon_result;

#if defined(__cplusplus) && __cplusplus >= 201103L
static_assert(sizeof(gradcon_result) == 96, "gradcon_result is 96 bytes");
static_assert(sizeof(gradcon_image) == 2 * sizeof(size_t) + 16, "gradcon_image layout");
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(gradcon_result) == 96, "gradcon_result is 96 bytes");
_Static_assert(sizeof(gradcon_image) == 2 * sizeof(size_t) + 16, "gradcon_image layout");
#endif

/* The library's ABI version (GRADCON_ABI_VERSION of the header it was built with). */
uint32_t gradcon_abi_version(void);

/* The library's version, e.g. "0.1.0". Static: do not free. */
const char *gradcon_version(void);

/* A short static name for a status, e.g. "GRADCON_ERR_IO" ("unknown status" for a value
 * that is not one). Do not free. */
const char *gradcon_status_str(gradcon_status status);

/* The message of the last call that failed on the calling thread; "" if none has. Successful
 * calls leave it as it is. Never NULL. The string belongs to the library: do not free it. It
 * stays valid until the calling thread's next call to gradcon_free or to a function that
 * returns a gradcon_status (copy it to keep it); gradcon_abi_version, gradcon_version,
 * gradcon_status_str and gradcon_last_error leave it valid. */
const char *gradcon_last_error(void);

/* Loads a model file: a `.gcm` model file, a training checkpoint (its selected model) or a
 * `.safetensors` file; the format is told by the file's first bytes. `path` is a
 * NUL-terminated file name (bytes as the OS takes them). On success *out is a new detector
 * owned by the caller; on failure *out is NULL. A folder is GRADCON_ERR_IO; a file that starts
 * as none of the three formats is GRADCON_ERR_FORMAT, "not a GradCon model, checkpoint or
 * safetensors file". */
gradcon_status gradcon_load(const char *path, gradcon_detector **out);

/* gradcon_load from the `len` bytes of a model file in memory (copied: the caller may free
 * them once the call returns). */
gradcon_status gradcon_load_bytes(const uint8_t *bytes, size_t len, gradcon_detector **out);

/* Releases a detector. When it returns, the worker threads gradcon_set_threads gave it have
 * ended, and its memory is returned to the allocator: the model, and the buffers the kernels
 * keep between calls to be fast (those of every thread, so other detectors of the process
 * allocate theirs again on their next call). glibc may keep freed memory for reuse rather than
 * return it to the system; malloc_trim(0) returns it. NULL is a no-op. Must not run at the
 * same time as any other call on the same detector; the pointer is invalid afterwards. */
void gradcon_free(gradcon_detector *detector);

/* From now on, scores on a pool of the detector's own of `threads` workers (1 to 256; no
 * more workers are started than the process has cores), replacing any earlier one, whose
 * workers have ended when it returns. Must not run at the same time as any other call on the
 * same detector. */
gradcon_status gradcon_set_threads(gradcon_detector *detector, uint32_t threads);

/* The image channels the model takes: 1 (grey) or 3 (RGB). Images of the other kind are
 * converted (see Conventions). */
gradcon_status gradcon_channels(const gradcon_detector *detector, uint32_t *out);

/* The side of the square images the model takes (28); other sizes are resized to it. */
gradcon_status gradcon_input_side(const gradcon_detector *detector, uint32_t *out);

/* Scores one image: `len` bytes at `pixels` (len == channels x height x width), channels 1
 * (grey) or 3 (RGB), any height and width from 1 (height x width at most 2^24), ordered as
 * `layout` says. Writes *out on success only. */
gradcon_status gradcon_score(const gradcon_detector *detector, const uint8_t *pixels, size_t len,
                             uint32_t channels, uint32_t height, uint32_t width,
                             gradcon_layout layout, gradcon_result *out);

/* Scores `count` images (each as in gradcon_score) in batched passes, writing out[i] for
 * images[i]; `out` holds `count` entries and must not overlap `images` or their pixels.
 * An image's result is the same to the bit as gradcon_score gives it, whatever the other
 * images of the call, its place among them and the number of threads. Every image is checked before any is scored, so an invalid argument writes
 * nothing; an internal error may leave some entries written. With count 0 nothing is read or
 * written and images and out may be NULL. */
gradcon_status gradcon_score_batch(const gradcon_detector *detector, const gradcon_image *images,
                                   size_t count, gradcon_result *out);

#ifdef __cplusplus
}
#endif

#endif /* GRADCON_H */
