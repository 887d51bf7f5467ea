/*
 * medsynth.h: the C ABI of the medsynth engine.
 *
 * The one contract between the Swift engine and every other language (the CPython extension in
 * python/medsynth/_engine.c is its first client). Conventions:
 *
 *  - Every function that can fail returns an int32_t status (MS_OK or an MS_ERR_* code) and, on
 *    failure, writes a NUL-terminated UTF-8 message into `err` (at most `err_len` bytes, truncated
 *    on a character boundary). `err` may be NULL when the caller does not want the message.
 *  - Objects are opaque handles created by *_create / *_load and released by *_free. A handle may
 *    be used from any thread, one call at a time: a second concurrent call on the same handle
 *    fails with MS_ERR_RUNTIME instead of racing.
 *  - Arrays are contiguous, row-major, native-endian; images are float32 NCHW. Counts are int64_t,
 *    byte sizes size_t. The engine never keeps a caller's pointer after the call returns.
 *  - Text (JSON) comes back through the size-query pattern: a function taking (buf, buf_len,
 *    needed) writes the bytes it needs (with the NUL) into *needed, and fills buf when it is large
 *    enough; otherwise it returns MS_ERR_BUFFER_TOO_SMALL. buf may be NULL to ask for the size.
 *    Long calls keep their result (a training history, sampling warnings) in the handle, read
 *    with *_result afterwards, so that a result of any size arrives whole.
 *  - Long calls take an optional `ms_run`: a progress callback, called on the calling thread
 *    (return non-zero to stop), and a cancel flag the caller may raise from a signal handler.
 *    A stopped call returns MS_ERR_CANCELLED and leaves the object usable (weights as after the
 *    last completed step).
 *  - Nothing here aborts the process on bad input: every argument is validated first.
 */
#ifndef MEDSYNTH_H
#define MEDSYNTH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes (and the Python exception each becomes) ---- */
#define MS_OK 0
#define MS_ERR_INVALID_ARGUMENT 1 /* ValueError */
#define MS_ERR_TYPE 2             /* TypeError */
#define MS_ERR_IO 3               /* OSError */
#define MS_ERR_RUNTIME 4          /* RuntimeError */
#define MS_ERR_MEMORY 5           /* MemoryError */
#define MS_ERR_CANCELLED 6        /* KeyboardInterrupt, or the callback's own exception */
#define MS_ERR_BUFFER_TOO_SMALL 7 /* a text buffer is too small: *needed holds the size to retry with */

/* Progress: `done` of `total` units (steps, batches) and a JSON object with details such as
   {"phase": "train", "epoch": 1, "loss": 0.41, "lr": 0.001}. Return non-zero to stop. */
typedef int32_t (*ms_progress_fn)(void *user, int64_t done, int64_t total, const char *info_json);

typedef struct ms_run {
    ms_progress_fn progress;      /* may be NULL */
    void *user;                   /* passed to progress */
    const int32_t *cancel;        /* may be NULL; the call stops soon after *cancel != 0 */
} ms_run;

/* ---- library ---- */

/* Writes the version string ("0.1.0"). */
int32_t ms_version(char *buf, size_t buf_len);
/* Threads used by the engine's kernels (default: MEDSYNTH_NUM_THREADS, OMP_NUM_THREADS, or the
   number of cores). */
int32_t ms_get_num_threads(void);
int32_t ms_set_num_threads(int32_t n, char *err, size_t err_len);
/* Bytes of tensor memory the engine holds now, and the most since the last reset. */
int64_t ms_memory_current(void);
int64_t ms_memory_peak(void);
void ms_memory_reset_peak(void);
/* A JSON description of one of the engine's registries or option sets, by topic:
   "architectures" (classifier names with their smallest input), "samplers", "shape_classes",
   "superpixel_methods", and the option tables "quickshift", "slic" and "lime" (the explainer's),
   "phantom_domains" (name, classes, default_counts, channels and summary of each phantom domain),
   "topics" (every topic), and the defaults and documentation of each option set:
   "classifier_config", "classifier_training", "diffusion_config", "diffusion_training", "sampling",
   "diffusion_forward", "diffusion_save". */
int32_t ms_registry(const char *topic, char *buf, size_t buf_len, size_t *needed, char *err, size_t err_len);

/* ---- classifiers ---- */

typedef struct ms_classifier ms_classifier;

/* config_json: {"architecture": "simple_cnn", "num_classes": 4, "in_channels": 1,
   "image_size": 64, "seed": 0}. Unknown keys or architectures are errors. */
int32_t ms_classifier_create(const char *config_json, ms_classifier **out, char *err, size_t err_len);
void ms_classifier_free(ms_classifier *model);
/* The model's resolved configuration as JSON (every default filled in), with its state
   ({"state": {"parameters": ..., "normalization_fitted": ...}}); size-query pattern. */
int32_t ms_classifier_config(ms_classifier *model, char *buf, size_t buf_len, size_t *needed,
                             char *err, size_t err_len);
/* The result of the last long call on the model (the training history of fit); size-query. */
int32_t ms_classifier_result(ms_classifier *model, char *buf, size_t buf_len, size_t *needed,
                             char *err, size_t err_len);
/* Trains on x [n, c, h, w] (float32, values in the data's own range, typically [0, 1]) with labels
   in [0, num_classes). Optional validation set (x_val may be NULL). options_json, e.g.
   {"epochs": 10, "batch_size": 32, "lr": 0.001, "weight_decay": 0.01, "optimizer": "adamw",
    "schedule": "cosine", "warmup_epochs": 0, "label_smoothing": 0, "class_weights": [..],
    "early_stopping_patience": 0, "checkpoint": "path.safetensors", "resume": false,
    "grad_clip": 0, "seed": 0}.
   The history is read afterwards with ms_classifier_result. */
int32_t ms_classifier_fit(ms_classifier *model,
                          const float *x, int64_t n, int64_t c, int64_t h, int64_t w,
                          const int64_t *labels,
                          const float *x_val, int64_t n_val, const int64_t *labels_val,
                          const char *options_json, const ms_run *run, char *err, size_t err_len);
/* Class probabilities (softmax) into probs [n, num_classes], evaluation mode, in batches. */
int32_t ms_classifier_predict_proba(ms_classifier *model,
                                    const float *x, int64_t n, int64_t c, int64_t h, int64_t w,
                                    int64_t batch_size, float *probs, int64_t probs_count,
                                    const ms_run *run, char *err, size_t err_len);
/* Length of the pooled feature vector the model's head (its last linear layer) reads. */
int32_t ms_classifier_feature_size(ms_classifier *model, int64_t *out, char *err, size_t err_len);
/* The head's input for every image into features [n, feature_size] (evaluation mode, in batches):
   the feature space of Frechet distances and nearest-neighbour audits. */
int32_t ms_classifier_features(ms_classifier *model,
                               const float *x, int64_t n, int64_t c, int64_t h, int64_t w,
                               int64_t batch_size, float *features, int64_t features_count,
                               const ms_run *run, char *err, size_t err_len);
/* Saves weights (torchvision's state-dict names) and configuration as safetensors, atomically.
   options_json may be NULL (no options yet). */
int32_t ms_classifier_save(ms_classifier *model, const char *path, const char *options_json,
                           char *err, size_t err_len);
int32_t ms_classifier_load(const char *path, ms_classifier **out, char *err, size_t err_len);
/* Loads weights with torchvision's state-dict names from a safetensors file at path, or (path NULL)
   from a safetensors image of len bytes at bytes. options_json (may be NULL):
   {"mode": "strict"} (default: every name and shape must match), "non_strict" (missing and unexpected
   names allowed and reported, shapes must match) or "pretrained" (fine-tuning: the backbone must match,
   the head is kept from initialisation when the file's is for another class count, the first
   convolution is adapted to in_channels, the input normalisation becomes the weights' own). A file
   that does not fit is an error listing every missing, unexpected and wrong-shape name, and changes
   nothing. The report ({"missing_keys", "unexpected_keys", "replaced_keys", "adapted_keys"}) is read
   afterwards with ms_classifier_result. */
int32_t ms_classifier_load_weights(ms_classifier *model, const char *path, const uint8_t *bytes, size_t len,
                                   const char *options_json, char *err, size_t err_len);
/* The model's state dict as a safetensors image (torchvision's names and order of keys, F32, each
   num_batches_tracked an I64 scalar; metadata "order": the names in state-dict order as a JSON
   list); size-query pattern: *needed receives the size and a buffer
   smaller than that gives MS_ERR_BUFFER_TOO_SMALL. */
int32_t ms_classifier_state_dict(ms_classifier *model, uint8_t *buf, size_t buf_len, size_t *needed,
                                 char *err, size_t err_len);

/* ---- diffusion models ---- */

typedef struct ms_diffusion ms_diffusion;

/* config_json: the U-Net ({"image_size": 64, "in_channels": 1, "base_channels": 32,
   "channel_multipliers": [1, 2, 4], "res_blocks": 1, "attention_resolutions": [16],
   "attention_heads": 1, "dropout": 0, "num_classes": 4, "norm_groups": 8}) and the process
   ({"schedule": "linear", "timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02,
   "prediction": "epsilon", "seed": 0, "data_range": [0, 1], "class_names": [...]}). */
int32_t ms_diffusion_create(const char *config_json, ms_diffusion **out, char *err, size_t err_len);
void ms_diffusion_free(ms_diffusion *model);
/* Resolved configuration and state ({"state": {"parameters", "trained_steps", "ema_updates"}}). */
int32_t ms_diffusion_config(ms_diffusion *model, char *buf, size_t buf_len, size_t *needed,
                            char *err, size_t err_len);
/* The result of the last fit (summary and loss history) or sample (warnings); size-query. */
int32_t ms_diffusion_result(ms_diffusion *model, char *buf, size_t buf_len, size_t *needed,
                            char *err, size_t err_len);
/* Trains on x [n, c, h, w] with labels [n] (NULL for an unconditional model). options_json, e.g.
   {"steps": 2000, "batch_size": 16, "lr": 2e-4, "weight_decay": 0, "warmup_steps": 200,
    "lr_schedule": "cosine", "ema_decay": 0.999, "p_uncond": 0.1, "min_snr_gamma": 5,
    "grad_clip": 1, "hflip": false, "vflip": false, "translate": 0, "rotate": 0,
    "checkpoint": "path", "checkpoint_every": 500, "resume": false, "seed": 0}.
   The summary is read afterwards with ms_diffusion_result. */
int32_t ms_diffusion_fit(ms_diffusion *model, const float *x, int64_t n, int64_t c, int64_t h, int64_t w,
                         const int64_t *labels, const char *options_json, const ms_run *run,
                         char *err, size_t err_len);
/* Generates one image per label (labels may be NULL for an unconditional model, then n images)
   into out [n, c, h, w] (float32, the training data's intensity range). options_json (the
   "sampling" registry topic documents each key and its default):
   {"sampler": "ddim" | "ddpm" | "dpm_solver++", "steps": 50, "eta": 0, "guidance_scale": 1.5,
    "seed": 0, "batch_size": 32, "use_ema": true, "clip": true, "clamp_output": true,
    "spacing": "linspace" | "leading" | "trailing", "ddim_target": "diffusers" | "scheduled"}.
   {"warnings": [...], "timesteps": [...], "used_ema": ...} is read afterwards with ms_diffusion_result. */
int32_t ms_diffusion_sample(ms_diffusion *model, const int64_t *labels, int64_t n, const char *options_json,
                            float *out, int64_t out_count, const ms_run *run, char *err, size_t err_len);
/* ms_diffusion_sample from noise the caller supplies (each may be NULL: the seed's draws):
   initial_noise [n, c, h, w] is x_T in the model's space (diffusers' `latents`, unit normal);
   step_noise [steps, n, c, h, w] is the z of every step (read only by the steps that add noise:
   DDPM at t > 0, DDIM with eta > 0); steps = the length of ms_diffusion_timesteps' list. */
int32_t ms_diffusion_sample_from(ms_diffusion *model, const int64_t *labels, int64_t n, const char *options_json,
                                 const float *initial_noise, int64_t initial_noise_count,
                                 const float *step_noise, int64_t step_noise_count,
                                 float *out, int64_t out_count, const ms_run *run, char *err, size_t err_len);
/* The timesteps a sampling call with these options evaluates, and where each step lands (-1: the
   clean image), as JSON {"timesteps": [...], "targets": [...], "spacing": "..."}; size-query. */
int32_t ms_diffusion_timesteps(ms_diffusion *model, const char *options_json, char *buf, size_t buf_len,
                               size_t *needed, char *err, size_t err_len);
/* The raw forward: the network's output for x [n, c, h, w] (the model's [-1, 1] space) at
   timesteps [timesteps_count] (1: one for every image, or n; each in [0, T)) with labels [n]
   (class indices; NULL: unconditional, the null class of a conditional model) into out
   [n, c, h, w]. options_json ("diffusion_forward" registry topic): {"output": "model" |
   "epsilon" | "v" | "x0", "guidance_scale": 1, "use_ema": true, "batch_size": 32}. */
int32_t ms_diffusion_forward(ms_diffusion *model, const float *x, int64_t n, int64_t c, int64_t h, int64_t w,
                             const int64_t *timesteps, int64_t timesteps_count, const int64_t *labels,
                             const char *options_json, float *out, int64_t out_count, const ms_run *run,
                             char *err, size_t err_len);
/* options_json ("diffusion_save" registry topic) may be NULL: {"weights": "both" | "ema" | "raw"}. */
int32_t ms_diffusion_save(ms_diffusion *model, const char *path, const char *options_json,
                          char *err, size_t err_len);
int32_t ms_diffusion_load(const char *path, ms_diffusion **out, char *err, size_t err_len);

/* ---- data ---- */

/* A labelled set of generated images that need convolution to tell apart: per class one shape
   (0 disc, 1 square, 2 triangle, 3 cross, 4 ring, 5 horizontal bars, 6 vertical bars,
   7 diagonal bars) at a random position, size and brightness on a noisy background.
   images [n_per_class * num_classes, channels, size, size] in [0, 1]; labels interleaved; masks
   [n, size, size] (uint8, 1 on the shape's own pixels) unless NULL. */
int32_t ms_make_shapes(int64_t n_per_class, int32_t num_classes, int32_t size, int32_t channels,
                       uint64_t seed, float *images, int64_t images_count, int64_t *labels,
                       int64_t labels_count, uint8_t *masks, int64_t masks_count, char *err, size_t err_len);

/* ---- explanations: superpixels and LIME ----
   LIME (Ribeiro et al. 2016) as the lime package computes it, in steps the caller composes:
   ms_superpixels → ms_lime_samples → ms_lime_hidden_image → ms_lime_classify (an engine
   classifier, batches built and classified inside) or ms_lime_perturb (a batch for the caller's
   own model) → ms_lime_fit. Segments are int32 [h, w] labels 0..num_segments-1, every value used. */

/* Superpixels of image [h, w, c] (float64, channels-last, c = 1 or 3, values as scikit-image's
   img_as_float gives them: uint8 / 255) into labels [h, w]; *count gets the number of segments.
   options_json: {"method": "quickshift" | "slic", ...}; each method's options and defaults are in
   ms_registry("quickshift") and ms_registry("slic"). */
int32_t ms_superpixels(const double *image, int64_t h, int64_t w, int64_t c, const char *options_json,
                       int32_t *labels, int64_t labels_count, int64_t *count, char *err, size_t err_len);
/* LIME's samples z [num_samples, num_features] (uint8 0/1): row 0 all ones, the rest Bernoulli(1/2)
   from the engine's Philox generator for (seed, the explanation stream, run): run 0 is the
   explanation, run 1 an independent second draw of it (for its stability). */
int32_t ms_lime_samples(int64_t num_samples, int64_t num_features, uint64_t seed, int64_t run, uint8_t *z,
                        int64_t z_count, char *err, size_t err_len);
/* What hidden superpixels show: image [h, w, c] (channels_last != 0) or [c, h, w], float32.
   hide_values NULL: each superpixel's mean colour (truncated to whole levels when integer_levels > 0,
   as lime's assignment into a uint8 image does); else hide_count (1 or c) values for every pixel.
   hidden has the image's shape. */
int32_t ms_lime_hidden_image(const float *image, int64_t h, int64_t w, int64_t c, int32_t channels_last,
                             const int32_t *segments, int64_t num_segments, const float *hide_values,
                             int64_t hide_count, int32_t integer_levels, float *hidden, int64_t hidden_count,
                             char *err, size_t err_len);
/* Perturbed images of rows [first, first + count) of z into out [count, image shape]: a pixel keeps
   the image's value where its superpixel is 1, else takes the hidden image's. */
int32_t ms_lime_perturb(const float *image, const float *hidden, int64_t h, int64_t w, int64_t c,
                        int32_t channels_last, const int32_t *segments, int64_t num_segments, const uint8_t *z,
                        int64_t num_samples, int64_t first, int64_t count, float *out, int64_t out_count,
                        char *err, size_t err_len);
/* A classifier's probabilities of every perturbed image, built and classified in the engine in
   batches of batch_size: image and hidden [c, h, w] in the model's input scale; probs
   [num_samples, num_classes]. Progress per batch. */
int32_t ms_lime_classify(ms_classifier *model, const float *image, const float *hidden, int64_t c, int64_t h,
                         int64_t w, const int32_t *segments, int64_t num_segments, const uint8_t *z,
                         int64_t num_samples, int64_t batch_size, float *probs, int64_t probs_count,
                         const ms_run *run, char *err, size_t err_len);
/* The surrogate of each label: z [num_samples, num_features], predictions [num_samples, num_classes]
   (float64), labels [num_labels]. options_json: the surrogate's options {"kernel_width",
   "alpha", "feature_selection", "num_features"} (defaults in ms_registry("lime")). Writes features and
   weights [num_labels, num_features] (out_count values each: the selected superpixels sorted by
   |weight|, then -1 and 0), intercept, score and local_pred [num_labels], and the sample weights
   [num_samples] unless sample_weights is NULL. */
int32_t ms_lime_fit(const uint8_t *z, int64_t num_samples, int64_t num_features, const double *predictions,
                    int64_t num_classes, const int64_t *labels, int64_t num_labels, const char *options_json,
                    int32_t *features, double *weights, int64_t out_count, double *intercept, double *score,
                    double *local_pred, double *sample_weights, char *err, size_t err_len);

/* The paper's three domains as phantoms drawn natively, with a lesion mask per image. domain:
   "brain_mri", "all" or "covid_ct" (ms_registry("phantom_domains") lists classes, default counts
   and channels). counts[k] images of class k (num_classes entries, each 0..1000000), class by
   class; size x size pixels (16..1024). images: [n, size, size, channels] when channels_last is
   non-zero, else [n, channels, size, size]; float32 in [0, 1]; images_count must equal
   n*channels*size*size with n = sum(counts). labels [n]. masks [n, size, size] (1 on the lesion)
   or NULL. Image j of class k depends only on (seed, k, j), not on the thread count. */
int32_t ms_make_phantom(const char *domain, const int64_t *counts, int32_t num_classes, int32_t size,
                        uint64_t seed, int32_t channels_last, float *images, int64_t images_count,
                        int64_t *labels, int64_t labels_count, uint8_t *masks, int64_t masks_count,
                        const ms_run *run, char *err, size_t err_len);

/* ---- image resizing ---- */

/* Antialiased bilinear resize, as Pillow's resize(BILINEAR): a triangle filter widened by the
   reduction factor, pixel centres aligned. Channels-last: x [n, h, w, c] -> y [n, out_h, out_w, c]
   (c = 1 for gray). y_count must equal n*out_h*out_w*c. */
int32_t ms_resize(const float *x, int64_t n, int64_t h, int64_t w, int64_t c, int64_t out_h,
                  int64_t out_w, float *y, int64_t y_count, char *err, size_t err_len);

/* ---- PNG ---- */

/* The header of a PNG as ms_png_read returns it. Fails (MS_ERR_IO) when the file declares more
   pixels than the limit below, and (MS_ERR_MEMORY) when its decoded size exceeds the memory
   available, so that a caller never allocates for a decompression bomb. */
int32_t ms_png_probe(const char *path, int64_t *width, int64_t *height, int32_t *channels,
                     int32_t *bit_depth, char *err, size_t err_len);
/* Reads samples [height, width, channels] as uint8 (bit depth 8) or uint16 (bit depth 16) into
   out; out_bytes must equal width*height*channels*(bit_depth/8) from ms_png_probe. */
int32_t ms_png_read(const char *path, void *out, size_t out_bytes, char *err, size_t err_len);
/* Writes samples [height, width, channels] (uint8 or uint16 per bit_depth) atomically. */
int32_t ms_png_write(const char *path, const void *samples, int64_t width, int64_t height,
                     int32_t channels, int32_t bit_depth, char *err, size_t err_len);

/* The most pixels (width x height) the PNG readers accept; 0 means no limit. The default is
   Pillow's MAX_IMAGE_PIXELS (89478485), or the environment variable MEDSYNTH_MAX_IMAGE_PIXELS
   read at first use (an invalid value makes both functions fail with MS_ERR_INVALID_ARGUMENT). */
int32_t ms_set_max_image_pixels(int64_t n, char *err, size_t err_len);
int32_t ms_get_max_image_pixels(int64_t *n, char *err, size_t err_len);

/* ---- safetensors ---- */

/* Reads and validates the header of a safetensors file (every rule of the reference reader:
   header size, JSON, dtypes, shapes against byte counts, tensors tiling the data exactly, nothing
   after them) without reading the data. Size-query pattern; the text is
   {"file_size": n, "data_start": n, "metadata": {str: str},
    "tensors": [{"name": s, "dtype": "F32", "shape": [...], "data_offsets": [b, e]}, ...]}
   with tensors in data order and offsets relative to data_start. */
int32_t ms_safetensors_header(const char *path, char *buf, size_t buf_len, size_t *needed, char *err,
                              size_t err_len);
/* ms_safetensors_header for a safetensors image (a whole file) of len bytes at bytes, whose data is
   also checked against its "medsynth_sha256" when the metadata holds one. */
int32_t ms_safetensors_image_header(const uint8_t *bytes, size_t len, char *buf, size_t buf_len, size_t *needed,
                                    char *err, size_t err_len);
/* Writes `count` tensors as a safetensors file, atomically. header_json:
   {"metadata": {str: str}, "tensors": [{"name": s, "dtype": "F32", "shape": [...]}, ...]}, one
   entry per data[i] of lengths[i] little-endian bytes. integrity != 0 adds "medsynth_sha256" (the
   SHA-256 of the data section) to the metadata. */
int32_t ms_safetensors_write(const char *path, const char *header_json, const void *const *data,
                             const size_t *lengths, int64_t count, int32_t integrity, char *err,
                             size_t err_len);
/* ms_safetensors_write into a safetensors image in buf (the same bytes the file would hold);
   size-query pattern: *needed receives the size and a smaller buffer gives MS_ERR_BUFFER_TOO_SMALL. */
int32_t ms_safetensors_image(const char *header_json, const void *const *data, const size_t *lengths,
                             int64_t count, int32_t integrity, uint8_t *buf, size_t buf_len, size_t *needed,
                             char *err, size_t err_len);

/* ---- functional operations (for tests, benchmarks and interoperability) ---- */

/* y [n, cout, ho, wo] = conv2d(x [n, cin, h, w], weight [cout, cin/groups, kh, kw], bias [cout]
   or NULL). y_count must equal n*cout*ho*wo. */
int32_t ms_conv2d_forward(const float *x, int64_t n, int64_t cin, int64_t h, int64_t w,
                          const float *weight, int64_t cout, int64_t kh, int64_t kw,
                          const float *bias, int64_t stride, int64_t padding, int64_t dilation,
                          int64_t groups, float *y, int64_t y_count, char *err, size_t err_len);
/* Gradients of conv2d from dy; each of dx, dweight, dbias may be NULL (not computed). They are
   overwritten, not accumulated. */
int32_t ms_conv2d_backward(const float *x, int64_t n, int64_t cin, int64_t h, int64_t w,
                           const float *weight, int64_t cout, int64_t kh, int64_t kw,
                           int64_t stride, int64_t padding, int64_t dilation, int64_t groups,
                           const float *dy, int64_t dy_count, float *dx, float *dweight,
                           float *dbias, char *err, size_t err_len);

/* c [m, n] = a [m, k] · b [k, n] through the engine's parallel sgemm. */
int32_t ms_matmul(const float *a, const float *b, float *c, int64_t m, int64_t n, int64_t k,
                  char *err, size_t err_len);

#ifdef __cplusplus
}
#endif
#endif /* MEDSYNTH_H */
