// Forward and backward passes of the operations of a Llama block, for training.
//
// Plain loops over row-major arrays, templated on the element type: training instantiates them
// for float, and the gradient checks for double, where central finite differences are precise
// enough to hold every backward pass to a tight tolerance. Shapes are given in the comments as
// (rows, columns); n is the number of token positions. Backward passes overwrite the input
// gradient (dx) and add into parameter gradients (dw), so that gradients of shared parameters and
// of several micro-batches accumulate.
#ifndef SLIMLM_TRAIN_OPS_H_
#define SLIMLM_TRAIN_OPS_H_

#include <cstdint>

namespace slimlm::train {

// y = x / sqrt(mean(x^2) + eps) * w per row.   x, y: (n, d); w: (d,); inv_rms: (n,) saved.
template <typename T>
void RmsNormForward(const T* x, const T* w, T* y, T* inv_rms, int64_t n, int64_t d, T eps);
// dx: (n, d) overwritten; dw: (d,) accumulated.
template <typename T>
void RmsNormBackward(const T* x, const T* w, const T* inv_rms, const T* dy, T* dx, T* dw, int64_t n,
                     int64_t d);

// y = x w^T.   x: (n, in); w: (out, in); y: (n, out).
template <typename T>
void LinearForward(const T* x, const T* w, T* y, int64_t n, int64_t in, int64_t out);
// dx = dy w (overwritten; skipped when dx is null); dw += dy^T x.
template <typename T>
void LinearBackward(const T* x, const T* w, const T* dy, T* dx, T* dw, int64_t n, int64_t in,
                    int64_t out);

// Rotates pairs (2i, 2i + 1) of the first rot_dim dimensions of every head in place by the angle
// of position `pos0 + t` and frequency i: theta = (pos0 + t) base^(-2i / rot_dim).
//   x: (n, heads * head_dim). inverse: rotate by -theta (the backward pass of a rotation).
template <typename T>
void Rope(T* x, int64_t n, int64_t heads, int64_t head_dim, int64_t rot_dim, double base,
          int64_t pos0, bool inverse);

// Causal attention with grouped queries: query head h reads key/value head h / (heads / kv).
//   q: (n, heads * hd); k, v: (n, kv * hd); out: (n, heads * hd); probs: (heads, n, n) saved
//   (row t holds the softmax over positions 0..t, zeros after).
template <typename T>
void AttentionForward(const T* q, const T* k, const T* v, T* out, T* probs, int64_t n,
                      int64_t heads, int64_t kv, int64_t hd);
// dq, dk, dv overwritten.
template <typename T>
void AttentionBackward(const T* q, const T* k, const T* v, const T* probs, const T* dout, T* dq,
                       T* dk, T* dv, int64_t n, int64_t heads, int64_t kv, int64_t hd);

// out = silu(g) * u elementwise over m values; backward overwrites dg and du.
template <typename T>
void SiluGateForward(const T* g, const T* u, T* out, int64_t m);
template <typename T>
void SiluGateBackward(const T* g, const T* u, const T* dout, T* dg, T* du, int64_t m);

// Mean over the n positions of -log softmax(logits[t])[targets[t]]; positions whose target is
// negative are skipped (and not counted). dlogits (n, vocab), when not null, receives the
// gradient of the mean: (softmax - onehot) / counted.
template <typename T>
T CrossEntropy(const T* logits, const int32_t* targets, T* dlogits, int64_t n, int64_t vocab);

// Distillation loss: the divergence of the student's softmax(logits / temperature) from a
// teacher distribution known by its k most likely tokens. Per position t, teacher_ids[t * k + j]
// and teacher_logp[t * k + j] are a token and its teacher log-probability (at temperature 1);
// the teacher's remaining mass is spread evenly over the other vocab - k tokens (at least 1e-6
// of it, so that no token has zero probability), and the result raised to 1 / temperature and
// normalized is the teacher's distribution p. With q the student's, the loss of a position is
//   (1 - reverse_weight) * KL(p || q) + reverse_weight * KL(q || p)
// (forward KL covers the teacher's modes, reverse KL seeks them), averaged over the n positions;
// dlogits (n, vocab), when not null, receives the gradient of that mean. Ids must be distinct
// within a position and in [0, vocab).
template <typename T>
T DistillKl(const T* logits, const int32_t* teacher_ids, const T* teacher_logp, int64_t k,
            T* dlogits, int64_t n, int64_t vocab, T temperature, T reverse_weight);

}  // namespace slimlm::train

#endif  // SLIMLM_TRAIN_OPS_H_
