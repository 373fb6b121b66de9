/* Masked batched linear layers on compressed weights: the CPU kernels behind
 * robustlaw.empirical.training.sparse_kernels, which compiles this file on first use.
 *
 * K members, each a layer with `rows` output units. Member k's kept weights sit at positions
 * k * P + [ptr[k * (rows + 1) + r], ptr[k * (rows + 1) + r + 1]) of `val` for its row r, with
 * the input unit of each entry in `idx` (and, for the transposed product, the position of its
 * value in `vpos`). Activations are unit-major, (K, units, B): the B examples of one unit are
 * contiguous, so each entry costs one axpy (spmm) or one dot product (sddmm) of length B, in
 * 32-byte vectors, eight of them at a time. Each member is computed by one thread in a fixed
 * order: results depend neither on the number of threads nor on the other members.
 *
 * ReLU between layers costs no pass of its own: spmm can apply it to its output as it stores
 * it (relu = 1), and the transposed spmm can multiply its output by the ReLU derivative of the
 * layer below (gate = that layer's output, positive exactly where its pre-activation is).
 */
#include <stdint.h>
#include <string.h>

#define TILE 8 /* vectors per tile: eight independent accumulators keep two FMA units busy */
#define INLINE static inline __attribute__((always_inline))

typedef float vec_f32 __attribute__((vector_size(32)));
typedef int32_t ivec_f32 __attribute__((vector_size(32)));
typedef double vec_f64 __attribute__((vector_size(32)));
typedef int64_t ivec_f64 __attribute__((vector_size(32)));

/* The lane sums of eight vectors, as one vector: total[q] = sum of a[q]'s lanes. */
INLINE vec_f32 reduce_f32(const vec_f32 a[8]) {
  const ivec_f32 even = {0, 8, 2, 10, 4, 12, 6, 14}, odd = {1, 9, 3, 11, 5, 13, 7, 15};
  const ivec_f32 low2 = {0, 1, 8, 9, 4, 5, 12, 13}, high2 = {2, 3, 10, 11, 6, 7, 14, 15};
  const ivec_f32 low4 = {0, 1, 2, 3, 8, 9, 10, 11}, high4 = {4, 5, 6, 7, 12, 13, 14, 15};
  vec_f32 u[4], v[2];
  for (int i = 0; i < 4; i++)
    u[i] = __builtin_shuffle(a[2 * i], a[2 * i + 1], even) +
           __builtin_shuffle(a[2 * i], a[2 * i + 1], odd);
  for (int i = 0; i < 2; i++)
    v[i] = __builtin_shuffle(u[2 * i], u[2 * i + 1], low2) +
           __builtin_shuffle(u[2 * i], u[2 * i + 1], high2);
  return __builtin_shuffle(v[0], v[1], low4) + __builtin_shuffle(v[0], v[1], high4);
}

/* The lane sums of four vectors, as one vector. */
INLINE vec_f64 reduce_f64(const vec_f64 a[4]) {
  const ivec_f64 even = {0, 4, 2, 6}, odd = {1, 5, 3, 7};
  const ivec_f64 low2 = {0, 1, 4, 5}, high2 = {2, 3, 6, 7};
  vec_f64 u[2];
  for (int i = 0; i < 2; i++)
    u[i] = __builtin_shuffle(a[2 * i], a[2 * i + 1], even) +
           __builtin_shuffle(a[2 * i], a[2 * i + 1], odd);
  return __builtin_shuffle(u[0], u[1], low2) + __builtin_shuffle(u[0], u[1], high2);
}

#define DEFINE_KERNELS(T, SUFFIX, LANES)                                                       \
  INLINE vec_##SUFFIX load_##SUFFIX(const T *p) {                                              \
    vec_##SUFFIX v;                                                                            \
    memcpy(&v, p, sizeof v);                                                                   \
    return v;                                                                                  \
  }                                                                                            \
  INLINE void store_##SUFFIX(T *p, vec_##SUFFIX v) { memcpy(p, &v, sizeof v); }                \
  /* ReLU of a if relu (NaN stays NaN, as in torch), else a */                                 \
  INLINE vec_##SUFFIX relu_##SUFFIX(vec_##SUFFIX a, const int relu) {                          \
    return relu ? (vec_##SUFFIX)((ivec_##SUFFIX)a & ~(a <= (vec_##SUFFIX){0})) : a;            \
  }                                                                                            \
  INLINE T relu1_##SUFFIX(T a, const int relu) { return relu && a <= 0 ? (T)0 : a; }           \
  /* a where h > 0, else 0: times the ReLU derivative at pre-activation h */                   \
  INLINE vec_##SUFFIX gate_##SUFFIX(vec_##SUFFIX a, const T *h) {                              \
    return (vec_##SUFFIX)((ivec_##SUFFIX)a & (load_##SUFFIX(h) > (vec_##SUFFIX){0}));          \
  }                                                                                            \
                                                                                               \
  INLINE void spmm_body_##SUFFIX(int64_t k, int64_t rows, int64_t B, int64_t P,                \
                                 const int64_t *ptr, const int32_t *idx, const int64_t *vpos,  \
                                 const T *val, const T *src, int64_t src_stride,               \
                                 const int relu, const T *bias, const T *gate, T *dst) {       \
    const T *s = src + k * src_stride;                                                         \
    for (int64_t r = 0; r < rows; r++) {                                                       \
      const int64_t e0 = k * P + ptr[k * (rows + 1) + r];                                      \
      const int64_t e1 = k * P + ptr[k * (rows + 1) + r + 1];                                  \
      const T b = bias ? bias[k * rows + r] : (T)0;                                            \
      T *d = dst + (k * rows + r) * B;                                                         \
      const T *h = gate ? gate + (k * rows + r) * B : NULL;                                    \
      int64_t t = 0;                                                                           \
      for (; t + TILE * LANES <= B; t += TILE * LANES) {                                       \
        vec_##SUFFIX a[TILE];                                                                  \
        for (int j = 0; j < TILE; j++) a[j] = (vec_##SUFFIX){0} + b;                           \
        for (int64_t e = e0; e < e1; e++) {                                                    \
          const T w = val[vpos ? vpos[e] : e];                                                 \
          const T *x = s + idx[e] * B + t;                                                     \
          for (int j = 0; j < TILE; j++) a[j] += w * load_##SUFFIX(x + j * LANES);             \
        }                                                                                      \
        for (int j = 0; j < TILE; j++) {                                                       \
          const vec_##SUFFIX out = h ? gate_##SUFFIX(a[j], h + t + j * LANES) : a[j];          \
          store_##SUFFIX(d + t + j * LANES, relu_##SUFFIX(out, relu));                         \
        }                                                                                      \
      }                                                                                        \
      for (; t + LANES <= B; t += LANES) {                                                     \
        vec_##SUFFIX a = (vec_##SUFFIX){0} + b;                                                \
        for (int64_t e = e0; e < e1; e++)                                                      \
          a += val[vpos ? vpos[e] : e] * load_##SUFFIX(s + idx[e] * B + t);                    \
        store_##SUFFIX(d + t, relu_##SUFFIX(h ? gate_##SUFFIX(a, h + t) : a, relu));           \
      }                                                                                        \
      for (; t < B; t++) {                                                                     \
        T a = b;                                                                               \
        for (int64_t e = e0; e < e1; e++)                                                      \
          a += val[vpos ? vpos[e] : e] * s[idx[e] * B + t];                                    \
        d[t] = relu1_##SUFFIX(h && !(h[t] > 0) ? (T)0 : a, relu);                              \
      }                                                                                        \
    }                                                                                          \
  }                                                                                            \
                                                                                               \
  /* dst[k, r, :] = f(bias[k, r] + sum over r's entries e of val[vpos[e]] * src[k, idx[e], :]) \
   * with vpos the identity if NULL, zeroed wherever gate[k, r, :] <= 0 if gate is given, and  \
   * f ReLU if relu else the identity. */                                                      \
  void spmm_##SUFFIX(int64_t K, int64_t threads, int64_t rows, int64_t B, int64_t P,           \
                     const int64_t *ptr, const int32_t *idx, const int64_t *vpos,              \
                     const T *val, const T *src, int64_t src_stride, int64_t relu,             \
                     const T *bias, const T *gate, T *dst) {                                   \
    _Pragma("omp parallel for schedule(static) num_threads(threads)")                          \
    for (int64_t k = 0; k < K; k++) {                                                          \
      if (relu)                                                                                \
        spmm_body_##SUFFIX(k, rows, B, P, ptr, idx, vpos, val, src, src_stride, 1,             \
                           bias, gate, dst);                                                   \
      else if (vpos)                                                                           \
        spmm_body_##SUFFIX(k, rows, B, P, ptr, idx, vpos, val, src, src_stride, 0,             \
                           bias, gate, dst);                                                   \
      else                                                                                     \
        spmm_body_##SUFFIX(k, rows, B, P, ptr, idx, NULL, val, src, src_stride, 0,             \
                           bias, gate, dst);                                                   \
    }                                                                                          \
  }                                                                                            \
                                                                                               \
  /* grad[e] = <dout[k, row[e], :], src[k, idx[e], :]> for member k's entries; 0 on padding;   \
   * and, if bias_grad is given, bias_grad[k, r] = sum of dout[k, r, :]. LANES entries at a    \
   * time, each with its own accumulator, so that one transposing reduction yields LANES dot   \
   * products (no horizontal sum per entry). */                                                \
  void sddmm_##SUFFIX(int64_t K, int64_t threads, int64_t rows, int64_t B, int64_t P,          \
                      const int64_t *ptr, const int32_t *idx, const int32_t *row,              \
                      const T *dout, const T *src, int64_t src_stride, T *grad,                \
                      T *bias_grad) {                                                          \
    _Pragma("omp parallel for schedule(static) num_threads(threads)")                          \
    for (int64_t k = 0; k < K; k++) {                                                          \
      const T *s = src + k * src_stride, *g = dout + k * rows * B;                             \
      const int64_t end = k * P + ptr[k * (rows + 1) + rows];                                  \
      int64_t e = k * P;                                                                       \
      for (; e + LANES <= end; e += LANES) {                                                   \
        vec_##SUFFIX a[LANES];                                                                 \
        const T *gq[LANES], *xq[LANES];                                                        \
        for (int q = 0; q < LANES; q++) {                                                      \
          a[q] = (vec_##SUFFIX){0};                                                            \
          gq[q] = g + row[e + q] * B;                                                          \
          xq[q] = s + idx[e + q] * B;                                                          \
        }                                                                                      \
        int64_t t = 0;                                                                         \
        for (; t + LANES <= B; t += LANES)                                                     \
          for (int q = 0; q < LANES; q++)                                                      \
            a[q] += load_##SUFFIX(gq[q] + t) * load_##SUFFIX(xq[q] + t);                       \
        vec_##SUFFIX total = reduce_##SUFFIX(a);                                               \
        for (; t < B; t++)                                                                     \
          for (int q = 0; q < LANES; q++) total[q] += gq[q][t] * xq[q][t];                     \
        store_##SUFFIX(grad + e, total);                                                       \
      }                                                                                        \
      for (; e < end; e++) {                                                                   \
        const T *gr = g + row[e] * B, *x = s + idx[e] * B;                                     \
        T total = 0;                                                                           \
        for (int64_t t = 0; t < B; t++) total += gr[t] * x[t];                                 \
        grad[e] = total;                                                                       \
      }                                                                                        \
      for (; e < (k + 1) * P; e++) grad[e] = 0;                                                \
      for (int64_t r = 0; bias_grad && r < rows; r++) {                                        \
        const T *gr = g + r * B;                                                               \
        vec_##SUFFIX a = {0};                                                                  \
        int64_t t = 0;                                                                         \
        for (; t + LANES <= B; t += LANES) a += load_##SUFFIX(gr + t);                         \
        T lanes[LANES], total = 0;                                                             \
        memcpy(lanes, &a, sizeof lanes);                                                       \
        for (int j = 0; j < LANES; j++) total += lanes[j];                                     \
        for (; t < B; t++) total += gr[t];                                                     \
        bias_grad[k * rows + r] = total;                                                       \
      }                                                                                        \
    }                                                                                          \
  }

DEFINE_KERNELS(float, f32, 8)
DEFINE_KERNELS(double, f64, 4)
