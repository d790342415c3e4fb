// Fused uncertain-region refinement op: schema, CPU kernels and the Python module entry point.
//
// The CPU kernels work on bands of rows of one (object n) plane at a time. Inside a band the
// k x k window sums are separable running sums: a vertical running sum of whole rows (a
// vectorisable add/subtract of the row entering and the row leaving the window) followed by
// a horizontal running sum along the row, so the cost per pixel does not depend on k.
// Running sums accumulate in double, and a count of the nonzero values in each window resets
// a sum to an exact 0 when the window holds only zeros: zero-weight regions give exactly the
// reference's zeros and rounding residue cannot travel beyond a zero stretch. Non-finite
// values switch the rest of their band to direct sums (see box_band).
// The weight box (the denominator) and the local max are computed once per band and reused
// for all C channels of that object. at::parallel_for runs the (object, band) tasks.
#include <Python.h>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <c10/util/Exception.h>
#include <cstring>
#include <type_traits>
#include <vector>

#include "local_refine.h"

namespace afb_urr {

void check_forward_args(const at::Tensor& feat, const at::Tensor& weight, int64_t kernel_size,
                               double eps) {
  TORCH_CHECK(feat.dim() == 4, "local_refine: feat must be N x C x H x W (4-D), got shape ", feat.sizes());
  TORCH_CHECK(weight.dim() == 4 && weight.size(1) == 1,
              "local_refine: weight must be N x 1 x H x W, got shape ", weight.sizes());
  TORCH_CHECK(feat.size(0) == weight.size(0) && feat.size(2) == weight.size(2) && feat.size(3) == weight.size(3),
              "local_refine: feat ", feat.sizes(), " and weight ", weight.sizes(),
              " must agree in N, H and W");
  TORCH_CHECK(at::isFloatingType(feat.scalar_type()),
              "local_refine: feat must be a floating-point tensor, got ", feat.scalar_type());
  TORCH_CHECK(feat.scalar_type() == weight.scalar_type(), "local_refine: feat (", feat.scalar_type(),
              ") and weight (", weight.scalar_type(), ") must have the same dtype");
  TORCH_CHECK(feat.device() == weight.device(), "local_refine: feat (", feat.device(), ") and weight (",
              weight.device(), ") must be on the same device");
  TORCH_CHECK(kernel_size >= 1 && kernel_size % 2 == 1,
              "local_refine: kernel_size must be a positive odd number, got ", kernel_size);
  TORCH_CHECK(std::isfinite(eps) && eps >= 0.0, "local_refine: eps must be finite and >= 0, got ", eps);
  TORCH_CHECK(feat.size(2) * feat.size(3) <= static_cast<int64_t>(INT32_MAX),
              "local_refine: H * W must fit in 32 bits, got H=", feat.size(2), " W=", feat.size(3));
}

void check_backward_args(const at::Tensor& grad_avg, const at::Tensor& grad_max, const at::Tensor& feat,
                                const at::Tensor& weight, const at::Tensor& avg, int64_t kernel_size,
                                double eps) {
  check_forward_args(feat, weight, kernel_size, eps);
  TORCH_CHECK(grad_avg.sizes() == feat.sizes(), "local_refine_backward: grad_avg has shape ", grad_avg.sizes(),
              ", expected feat's shape ", feat.sizes());
  TORCH_CHECK(avg.sizes() == feat.sizes(), "local_refine_backward: avg has shape ", avg.sizes(),
              ", expected feat's shape ", feat.sizes());
  TORCH_CHECK(grad_max.sizes() == weight.sizes(), "local_refine_backward: grad_max has shape ", grad_max.sizes(),
              ", expected weight's shape ", weight.sizes());
  for (const at::Tensor* t : {&grad_avg, &grad_max, &avg}) {
    TORCH_CHECK(t->scalar_type() == feat.scalar_type(), "local_refine_backward: every tensor must have dtype ",
                feat.scalar_type(), ", got ", t->scalar_type());
    TORCH_CHECK(t->device() == feat.device(), "local_refine_backward: every tensor must be on ", feat.device(),
                ", got ", t->device());
  }
}

void check_device(const at::Tensor& feat, bool cuda, const char* op) {
  TORCH_CHECK(feat.is_cuda() == cuda, op, ": tensors must be on ", cuda ? "a CUDA device" : "the CPU", ", got ",
              feat.device());
}

void check_limit(bool ok, const char* what, int64_t value) { TORCH_CHECK(ok, what, value); }

namespace {

// The bits of a double (std::bit_cast without C++20: torch before 2.12 builds
// extensions as C++17). Compiles to a register move.
inline uint64_t bits_of(double v) {
  uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

template <typename T>
inline double to_double(T v) {
  return static_cast<double>(static_cast<float>(v));
}
template <>
inline double to_double<float>(float v) {
  return static_cast<double>(v);
}
template <>
inline double to_double<double>(double v) {
  return v;
}

// Precision of the stored reciprocal denominators: double for double inputs, float otherwise.
template <typename scalar_t>
using inv_type = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Rows per parallel task: a band of weight and reciprocal rows (reused for every channel)
// stays around 256 KiB, and there are at least two tasks per thread when the image allows.
int64_t band_rows(int64_t N, int64_t H, int64_t W) {
  int64_t bh = std::clamp<int64_t>(32768 / std::max<int64_t>(W, 1), 16, 128);
  const int64_t want = 2 * static_cast<int64_t>(at::get_num_threads());
  while (bh > 8 && N * ceil_div(H, bh) < want) bh /= 2;
  return std::max<int64_t>(1, std::min(bh, H));
}

// Grain for at::parallel_for over `tasks` tasks covering `work` elements: small problems run
// on the calling thread (waking a thread team costs more than they take).
inline int64_t grain_for(int64_t tasks, int64_t work) { return work < (int64_t{1} << 16) ? tasks : 1; }

// Scratch rows for box_band: `pad` holds one row of vertical sums with r + 1 zeros on the
// left and r zeros on the right, so the horizontal running sum needs no bounds tests; `count`
// holds, per column, how many nonzero values the vertical window contains.
struct BoxScratch {
  std::vector<double> pad, count, values, row;
  int64_t r;
  BoxScratch(int64_t W, int64_t radius)
      : pad(W + 2 * radius + 1, 0.0), count(W, 0.0), values(W, 0.0), row(W, 0.0), r(radius) {}
};

// out[x] = pad[x + 1] + ... + pad[x + span] for x in [0, W), i.e. the window sums of the row
// v[j] = pad[j + r + 1], as a running sum out[x] = out[x - 1] + pad[x + span] - pad[x]. A
// running count of nonzero entries resets the sum to an exact 0 whenever the window holds
// only zeros, so rounding residue never outlives a zero stretch. The row is cut into four
// segments with their own running sums so that four independent add chains overlap.
inline void horizontal_box(const double* pad, double* out, int64_t W, int64_t span) {
  constexpr int64_t kSegments = 4;
  const int64_t len = W / kSegments;
  const int64_t segments = len < 8 ? 1 : kSegments;
  const int64_t seg_len = len < 8 ? W : len;
  auto is_nonzero = [](double v) {  // integer test: no NaN-aware floating compare needed
    return static_cast<int64_t>((bits_of(v) << 1) != 0);
  };
  double run[kSegments];
  int64_t nonzero[kSegments];
  for (int64_t s = 0; s < segments; ++s) {
    run[s] = 0.0;
    nonzero[s] = 0;
    for (int64_t j = 0; j < span; ++j) {
      run[s] += pad[s * seg_len + j];
      nonzero[s] += is_nonzero(pad[s * seg_len + j]);
    }
  }
  auto step = [&](int64_t s, int64_t x) {
    const double in = pad[x + span], out_of = pad[x];
    run[s] += in - out_of;
    nonzero[s] += is_nonzero(in) - is_nonzero(out_of);
    run[s] = nonzero[s] != 0 ? run[s] : 0.0;
    out[x] = run[s];
  };
  if (segments == kSegments) {
    for (int64_t i = 0; i < seg_len; ++i) {
      for (int64_t s = 0; s < kSegments; ++s) step(s, s * seg_len + i);
    }
  } else {
    for (int64_t x = 0; x < seg_len; ++x) step(0, x);
  }
  for (int64_t x = segments * seg_len; x < W; ++x) step(segments - 1, x);
}

// Window sums over rows [y0, y1) of a plane given row by row: load_row(y, values) writes
// row y (as double) into values[0..W); emit(y, sums) receives sums[x] = sum of the in-bounds
// pixels of the k x k window centred on (y, x).
// Fast path: vertical running sums per column, with a nonzero count per column that resets
// a column sum to an exact 0 when its window holds only zeros (as in horizontal_box), then
// horizontal_box. Running sums cannot subtract an infinity or a NaN back out, so once a
// non-finite value enters the window the rest of the band is summed directly (O(k) per
// pixel, exactly the reference's propagation of inf and NaN). Rows emitted before that
// never had a non-finite value in their window, because every row is checked on entering.
template <typename LoadRow, typename Emit>
void box_band(int64_t H, int64_t W, int64_t r, int64_t y0, int64_t y1, BoxScratch& s, const LoadRow& load_row,
              const Emit& emit) {
  std::fill(s.pad.begin(), s.pad.end(), 0.0);
  std::fill(s.count.begin(), s.count.end(), 0.0);
  double* acc = s.pad.data() + r + 1;
  double* count = s.count.data();
  double* values = s.values.data();
  double* out = s.row.data();
  bool finite = true;
  auto enter = [&](int64_t y, double sign) {  // sign +1: row y enters the window, -1: it leaves
    load_row(y, values);
    uint64_t bad = 0;
    for (int64_t x = 0; x < W; ++x) {  // branch-free so that it vectorises
      const double v = values[x];
      const double nonzero = v != 0.0 ? 1.0 : 0.0;
      const double c = count[x] + sign * nonzero;
      const double sum = acc[x] + sign * v;
      count[x] = c;
      const double a = c != 0.0 ? sum : 0.0;
      acc[x] = a;
      bad |= bits_of(a - a);  // +0.0 (all bits clear) unless a is inf or NaN
    }
    if (bad != 0) finite = false;
  };
  // The window holds rows [y - r, y + r - 1] (in bounds) before row y is handled.
  for (int64_t y = std::max<int64_t>(0, y0 - r); y < std::min<int64_t>(H, y0 + r); ++y) enter(y, 1.0);
  const int64_t span = 2 * r + 1;
  int64_t y = y0;
  for (; y < y1 && finite; ++y) {
    if (y + r < H) enter(y + r, 1.0);
    if (!finite) break;
    horizontal_box(s.pad.data(), out, W, span);
    emit(y, static_cast<const double*>(out));
    if (y - r >= 0) enter(y - r, -1.0);
  }
  double* column = s.count.data();  // reused: the running state is not needed any more
  for (; y < y1; ++y) {
    std::fill_n(column, W, 0.0);
    for (int64_t yy = std::max<int64_t>(0, y - r); yy <= std::min<int64_t>(H - 1, y + r); ++yy) {
      load_row(yy, values);
      for (int64_t x = 0; x < W; ++x) column[x] += values[x];
    }
    for (int64_t x = 0; x < W; ++x) {
      double sum = 0.0;
      for (int64_t j = std::max<int64_t>(0, x - r); j <= std::min<int64_t>(W - 1, x + r); ++j) sum += column[j];
      out[x] = sum;
    }
    emit(y, static_cast<const double*>(out));
  }
}

// Local max (and optionally its flat in-plane index) over in-bounds k x k windows for the
// output rows [y0, y1): a horizontal then a vertical pass. Ties keep the first maximum in
// row-major scan order and a NaN always wins (the last NaN), which is max_pool2d's rule.
struct MaxScratch {
  std::vector<double> hval, vval, row;
  std::vector<int32_t> hidx, vidx;
};

template <typename scalar_t, bool kWithIndex>
void band_max(const scalar_t* w, int64_t H, int64_t W, int64_t r, int64_t y0, int64_t y1, MaxScratch& s,
              scalar_t* out_val, int32_t* out_idx) {
  const int64_t ya = std::max<int64_t>(0, y0 - r);
  const int64_t yb = std::min<int64_t>(H, y1 + r);
  s.hval.resize((yb - ya) * W);
  s.vval.resize(W);
  if (kWithIndex) {
    s.hidx.resize((yb - ya) * W);
    s.vidx.resize(W);
  }
  s.row.resize(W);
  for (int64_t y = ya; y < yb; ++y) {
    const scalar_t* src = w + y * W;
    double* row = s.row.data();
    for (int64_t x = 0; x < W; ++x) row[x] = to_double(src[x]);
    double* hv = s.hval.data() + (y - ya) * W;
    int32_t* hi = kWithIndex ? s.hidx.data() + (y - ya) * W : nullptr;
    const int32_t base = static_cast<int32_t>(y * W);
    // Start from the first in-bounds pixel, then scan the offsets in increasing order so
    // that only a strictly larger value (or a NaN) replaces the current maximum.
    for (int64_t x = 0; x < W; ++x) {
      const int64_t lo = std::max<int64_t>(0, x - r);
      hv[x] = row[lo];
      if (kWithIndex) hi[x] = base + static_cast<int32_t>(lo);
    }
    for (int64_t d = -r; d <= r; ++d) {
      const int64_t xa = std::max<int64_t>(0, -d), xb = std::min<int64_t>(W, W - d);
      for (int64_t x = xa; x < xb; ++x) {
        const double v = row[x + d];
        const bool take = (v > hv[x]) | (v != v);  // branch-free so that the loop vectorises
        hv[x] = take ? v : hv[x];
        if (kWithIndex) hi[x] = take ? base + static_cast<int32_t>(x + d) : hi[x];
      }
    }
  }
  for (int64_t y = y0; y < y1; ++y) {
    const int64_t lo = std::max<int64_t>(0, y - r);
    const int64_t hi = std::min<int64_t>(H - 1, y + r);
    double* m = s.vval.data();
    std::copy_n(s.hval.data() + (lo - ya) * W, W, m);
    if (kWithIndex) std::copy_n(s.hidx.data() + (lo - ya) * W, W, s.vidx.data());
    for (int64_t i = lo + 1; i <= hi; ++i) {
      const double* hv = s.hval.data() + (i - ya) * W;
      const int32_t* hidx = kWithIndex ? s.hidx.data() + (i - ya) * W : nullptr;
      int32_t* vidx = kWithIndex ? s.vidx.data() : nullptr;
      for (int64_t x = 0; x < W; ++x) {
        const double v = hv[x];
        const bool take = (v > m[x]) | (v != v);
        m[x] = take ? v : m[x];
        if (kWithIndex) vidx[x] = take ? hidx[x] : vidx[x];
      }
    }
    if (out_val != nullptr) {
      for (int64_t x = 0; x < W; ++x) out_val[y * W + x] = static_cast<scalar_t>(m[x]);
    }
    if (kWithIndex) std::copy_n(s.vidx.data(), W, out_idx + y * W);
  }
}

template <typename scalar_t>
void forward_kernel(const scalar_t* feat, const scalar_t* weight, scalar_t* avg, scalar_t* mx, int64_t N,
                    int64_t C, int64_t H, int64_t W, int64_t k, double eps) {
  using inv_t = inv_type<scalar_t>;
  const int64_t r = k / 2;
  const double kk_eps = static_cast<double>(k) * static_cast<double>(k) * eps;
  const int64_t plane = H * W;
  const int64_t bh = band_rows(N, H, W);
  const int64_t nb = ceil_div(H, bh);
  at::parallel_for(0, N * nb, grain_for(N * nb, N * (C + 1) * plane), [&](int64_t t0, int64_t t1) {
    BoxScratch box(W, r);
    MaxScratch ms;
    std::vector<inv_t> inv(bh * W);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / nb;
      const int64_t y0 = (t % nb) * bh;
      const int64_t y1 = std::min(H, y0 + bh);
      const scalar_t* w = weight + n * plane;
      box_band(
          H, W, r, y0, y1, box,
          [&](int64_t y, double* v) {
            const scalar_t* wr = w + y * W;
            for (int64_t x = 0; x < W; ++x) v[x] = to_double(wr[x]);
          },
          [&](int64_t y, const double* s) {
            inv_t* ir = inv.data() + (y - y0) * W;
            for (int64_t x = 0; x < W; ++x) ir[x] = static_cast<inv_t>(1.0 / (s[x] + kk_eps));
          });
      band_max<scalar_t, false>(w, H, W, r, y0, y1, ms, mx + n * plane, nullptr);
      for (int64_t c = 0; c < C; ++c) {
        const scalar_t* f = feat + (n * C + c) * plane;
        scalar_t* o = avg + (n * C + c) * plane;
        box_band(
            H, W, r, y0, y1, box,
            [&](int64_t y, double* v) {
              const scalar_t* fr = f + y * W;
              const scalar_t* wr = w + y * W;
              for (int64_t x = 0; x < W; ++x) v[x] = to_double(fr[x]) * to_double(wr[x]);
            },
            [&](int64_t y, const double* s) {
              const inv_t* ir = inv.data() + (y - y0) * W;
              scalar_t* orow = o + y * W;
              for (int64_t x = 0; x < W; ++x) orow[x] = static_cast<scalar_t>(s[x] * static_cast<double>(ir[x]));
            });
      }
    }
  });
}

// Gradients, with D = box(w) + k*k*eps (so avg = box(f*w) / D) and g = grad_avg:
//   grad_feat[c] = w * box(g[c] / D)
//   grad_w       = sum_c f[c] * box(g[c] / D) + box(-sum_c g[c] * avg[c] / D) + (grad_max routed
//                  to each window's argmax)
// (the box of a centred odd window with zero padding is its own adjoint).
template <typename scalar_t>
void backward_kernel(const scalar_t* gavg, const scalar_t* gmax, const scalar_t* feat, const scalar_t* weight,
                     const scalar_t* avg, scalar_t* gfeat, scalar_t* gweight, int64_t N, int64_t C, int64_t H,
                     int64_t W, int64_t k, double eps) {
  using inv_t = inv_type<scalar_t>;
  const int64_t r = k / 2;
  const double kk_eps = static_cast<double>(k) * static_cast<double>(k) * eps;
  const int64_t plane = H * W;
  const int64_t bh = band_rows(N, H, W);
  const int64_t nb = ceil_div(H, bh);
  std::vector<inv_t> inv(N * plane);
  std::vector<double> gden(N * plane);
  std::vector<double> gw(N * plane);
  std::vector<int32_t> argmax(N * plane);

  // Phase 1 (per band): 1 / D, the argmax of every window and gden = -sum_c g * avg / D.
  const int64_t grain = grain_for(N * nb, N * (C + 1) * plane);
  at::parallel_for(0, N * nb, grain, [&](int64_t t0, int64_t t1) {
    BoxScratch box(W, r);
    MaxScratch ms;
    std::vector<double> dot(bh * W);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / nb;
      const int64_t y0 = (t % nb) * bh;
      const int64_t y1 = std::min(H, y0 + bh);
      const scalar_t* w = weight + n * plane;
      inv_t* inv_n = inv.data() + n * plane;
      box_band(
          H, W, r, y0, y1, box,
          [&](int64_t y, double* v) {
            const scalar_t* wr = w + y * W;
            for (int64_t x = 0; x < W; ++x) v[x] = to_double(wr[x]);
          },
          [&](int64_t y, const double* s) {
            inv_t* ir = inv_n + y * W;
            for (int64_t x = 0; x < W; ++x) ir[x] = static_cast<inv_t>(1.0 / (s[x] + kk_eps));
          });
      band_max<scalar_t, true>(w, H, W, r, y0, y1, ms, nullptr, argmax.data() + n * plane);
      const int64_t len = (y1 - y0) * W;
      std::fill(dot.begin(), dot.end(), 0.0);
      for (int64_t c = 0; c < C; ++c) {
        const scalar_t* g = gavg + (n * C + c) * plane + y0 * W;
        const scalar_t* a = avg + (n * C + c) * plane + y0 * W;
        for (int64_t i = 0; i < len; ++i) dot[i] += to_double(g[i]) * to_double(a[i]);
      }
      double* gd = gden.data() + n * plane + y0 * W;
      const inv_t* ib = inv_n + y0 * W;
      for (int64_t i = 0; i < len; ++i) gd[i] = -dot[i] * static_cast<double>(ib[i]);
    }
  });

  // Phase 2 (per band): grad_feat, and grad_w's sum over channels plus box(gden).
  at::parallel_for(0, N * nb, grain, [&](int64_t t0, int64_t t1) {
    BoxScratch box(W, r);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / nb;
      const int64_t y0 = (t % nb) * bh;
      const int64_t y1 = std::min(H, y0 + bh);
      const scalar_t* w = weight + n * plane;
      const inv_t* inv_n = inv.data() + n * plane;
      const double* gd = gden.data() + n * plane;
      double* gwn = gw.data() + n * plane;  // rows [y0, y1) belong to this task
      box_band(
          H, W, r, y0, y1, box,
          [&](int64_t y, double* v) { std::copy_n(gd + y * W, W, v); },
          [&](int64_t y, const double* s) { std::copy_n(s, W, gwn + y * W); });
      for (int64_t c = 0; c < C; ++c) {
        const scalar_t* g = gavg + (n * C + c) * plane;
        const scalar_t* f = feat + (n * C + c) * plane;
        scalar_t* gf = gfeat + (n * C + c) * plane;
        box_band(
            H, W, r, y0, y1, box,
            [&](int64_t y, double* v) {
              const scalar_t* gr = g + y * W;
              const inv_t* ir = inv_n + y * W;
              for (int64_t x = 0; x < W; ++x) v[x] = to_double(gr[x]) * static_cast<double>(ir[x]);
            },
            [&](int64_t y, const double* s) {
              const scalar_t* wr = w + y * W;
              const scalar_t* fr = f + y * W;
              scalar_t* gfr = gf + y * W;
              double* gwr = gwn + y * W;
              for (int64_t x = 0; x < W; ++x) {
                gfr[x] = static_cast<scalar_t>(to_double(wr[x]) * s[x]);
                gwr[x] += to_double(fr[x]) * s[x];
              }
            });
      }
    }
  });

  // Phase 3 (per object): route grad_max to the argmax of each window (in output scan
  // order, as max_pool2d's backward does), then cast.
  at::parallel_for(0, N, grain_for(N, N * plane), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      double* gwn = gw.data() + n * plane;
      const int32_t* am = argmax.data() + n * plane;
      const scalar_t* gm = gmax + n * plane;
      for (int64_t p = 0; p < plane; ++p) gwn[am[p]] += to_double(gm[p]);
      scalar_t* out = gweight + n * plane;
      for (int64_t q = 0; q < plane; ++q) out[q] = static_cast<scalar_t>(gwn[q]);
    }
  });
}

std::tuple<at::Tensor, at::Tensor> local_refine_cpu(const at::Tensor& feat, const at::Tensor& weight,
                                                     int64_t kernel_size, double eps) {
  check_forward_args(feat, weight, kernel_size, eps);
  check_device(feat, false, "local_refine (CPU kernel)");
  const at::Tensor f = feat.contiguous();
  const at::Tensor w = weight.contiguous();
  at::Tensor avg = at::empty(f.sizes(), f.options());
  at::Tensor mx = at::empty(w.sizes(), w.options());
  const int64_t N = f.size(0), C = f.size(1), H = f.size(2), W = f.size(3);
  if (N * H * W == 0) return {avg, mx};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, f.scalar_type(), "local_refine_cpu", [&] {
    forward_kernel<scalar_t>(f.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(), avg.mutable_data_ptr<scalar_t>(),
                             mx.mutable_data_ptr<scalar_t>(), N, C, H, W, kernel_size, eps);
  });
  return {avg, mx};
}

std::tuple<at::Tensor, at::Tensor> local_refine_backward_cpu(const at::Tensor& grad_avg, const at::Tensor& grad_max,
                                                              const at::Tensor& feat, const at::Tensor& weight,
                                                              const at::Tensor& avg, int64_t kernel_size,
                                                              double eps) {
  check_backward_args(grad_avg, grad_max, feat, weight, avg, kernel_size, eps);
  check_device(feat, false, "local_refine_backward (CPU kernel)");
  const at::Tensor ga = grad_avg.contiguous();
  const at::Tensor gm = grad_max.contiguous();
  const at::Tensor f = feat.contiguous();
  const at::Tensor w = weight.contiguous();
  const at::Tensor a = avg.contiguous();
  at::Tensor gf = at::empty(f.sizes(), f.options());
  at::Tensor gw = at::empty(w.sizes(), w.options());
  const int64_t N = f.size(0), C = f.size(1), H = f.size(2), W = f.size(3);
  if (N * H * W == 0) return {gf, gw};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, f.scalar_type(), "local_refine_backward_cpu", [&] {
    backward_kernel<scalar_t>(ga.const_data_ptr<scalar_t>(), gm.const_data_ptr<scalar_t>(), f.const_data_ptr<scalar_t>(),
                              w.const_data_ptr<scalar_t>(), a.const_data_ptr<scalar_t>(), gf.mutable_data_ptr<scalar_t>(),
                              gw.mutable_data_ptr<scalar_t>(), N, C, H, W, kernel_size, eps);
  });
  return {gf, gw};
}

}  // namespace

TORCH_LIBRARY(afb_urr, m) {
  m.def("local_refine(Tensor feat, Tensor weight, int kernel_size=7, float eps=1e-08) -> (Tensor, Tensor)",
        {at::Tag::pt2_compliant_tag});
  // The streaming CUDA forward (CUDA only; afb_urr/ops.py chooses it explicitly, see
  // local_refine_cuda.cu). Its gradient is local_refine_backward, as for local_refine.
  m.def("local_refine_stream(Tensor feat, Tensor weight, int kernel_size=7, float eps=1e-08) -> (Tensor, Tensor)",
        {at::Tag::pt2_compliant_tag});
  m.def(
      "local_refine_backward(Tensor grad_avg, Tensor grad_max, Tensor feat, Tensor weight, Tensor avg, "
      "int kernel_size, float eps) -> (Tensor, Tensor)",
      {at::Tag::pt2_compliant_tag});
}

TORCH_LIBRARY_IMPL(afb_urr, CPU, m) {
  m.impl("local_refine", &local_refine_cpu);
  m.impl("local_refine_backward", &local_refine_backward_cpu);
}

}  // namespace afb_urr

// `import afb_urr._C` loads this library, which registers the ops above with the dispatcher.
// with_cuda tells Python whether the CUDA kernels were compiled in.
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT, "_C", "Compiled kernels of afb_urr (registers torch.ops.afb_urr.*).", -1, nullptr,
      nullptr,           nullptr, nullptr,                                                    nullptr};
  PyObject* module = PyModule_Create(&module_def);
  if (module == nullptr) return nullptr;
#ifdef AFB_URR_WITH_CUDA
  const long with_cuda = 1;
#else
  const long with_cuda = 0;
#endif
  if (PyModule_AddIntConstant(module, "with_cuda", with_cuda) < 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
