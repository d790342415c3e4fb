// Fused uncertain-region refinement op: CUDA kernels (fp32, fp64, fp16 and bf16; half types
// accumulate in fp32).
//
// Every kernel works on 32 x 32 output tiles with 256 threads. A block stages its tile plus a
// halo of r = k / 2 pixels in shared memory, forms the k x k window sums separably (a
// horizontal pass into a second shared buffer, then a vertical pass where each thread keeps
// the sums of its 4 output rows in registers) and writes the result. Window sums are direct
// sums (no running sums), so zero-weight regions give exact zeros as in the reference.
//
// Two forward kernels exist. The tile kernel below is the verified default. The streaming
// kernel (forward_stream_kernel, op afb_urr::local_refine_stream, chosen in afb_urr/ops.py by
// AFB_URR_CUDA_KERNEL=stream or ops.set_cuda_kernel("stream")) has passed no GPU run yet;
// the default stays on the tile kernel until one confirms it (scripts/gpu_check.sh).
//
// Forward (tile): one pass. A block owns one object n, one tile and a group of channels; it stages
// the weight tile once, derives 1 / (box(w) + k*k*eps) and the local max from it, then for
// each of its channels stages feat * weight and writes the average.
// Backward: (1) 1 / D and each window's argmax, (2) gden = -sum_c g * avg / D per pixel,
// (3) per channel group: grad_feat = w * box(g / D) and the group's partial
// sum_c feat * box(g / D), (4) grad_w = sum of partials + box(gden) + grad_max gathered from
// the windows whose argmax is the pixel.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/AccumulateType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <math_constants.h>
#include <torch/library.h>

#include <algorithm>

#include "local_refine.h"

namespace afb_urr {
namespace {

constexpr int kTileW = 32;                          // output tile width (one warp)
constexpr int kTileH = 32;                          // output tile height
constexpr int kBlockY = 8;                          // blockDim = (32, 8)
constexpr int kThreads = kTileW * kBlockY;          // 256
constexpr int kRowsPerThread = kTileH / kBlockY;    // 4 output rows per thread

// Shared-memory layout (acc_t elements) for a radius r: a staged tile with halo
// ((32 + 2r) x (32 + 2r)), a second staged tile, and the horizontal sums ((32 + 2r) x 32).
__host__ __device__ inline int halo_side(int r) { return kTileW + 2 * r; }

// afb_urr/ops.py (cuda_kernel_fits) mirrors this size to fall back to PyTorch where it does not fit.
template <typename acc_t>
size_t shared_bytes(int r, int staged_tiles) {
  const size_t side = static_cast<size_t>(halo_side(r));
  return (staged_tiles * side * side + side * kTileW) * sizeof(acc_t);
}

template <typename T>
__device__ __forceinline__ T nan_aware_max_update(T v, T m, bool& take) {
  take = (v > m) || (v != v);
  return take ? v : m;
}

// Stages src (one H x W plane, optionally times the staged tile `mul`) with a halo into
// dst; pixels outside the image are 0.
template <typename scalar_t, typename acc_t, bool kMultiply>
__device__ __forceinline__ void stage_tile(const scalar_t* __restrict__ src, const acc_t* __restrict__ mul,
                                           acc_t* __restrict__ dst, int H, int W, int x0, int y0, int r) {
  const int side = halo_side(r);
  const int count = side * side;
  const int tid = threadIdx.y * kTileW + threadIdx.x;
  // (ty, tx) of element i, advanced incrementally to avoid a division per element.
  int ty = tid / side;
  int tx = tid - ty * side;
  const int step_y = kThreads / side;
  const int step_x = kThreads - step_y * side;
  for (int i = tid; i < count; i += kThreads) {
    const int y = y0 - r + ty;
    const int x = x0 - r + tx;
    acc_t v = acc_t(0);
    if (y >= 0 && y < H && x >= 0 && x < W) {
      v = static_cast<acc_t>(src[static_cast<int64_t>(y) * W + x]);
      if (kMultiply) v *= mul[i];
    }
    dst[i] = v;
    tx += step_x;
    ty += step_y;
    if (tx >= side) {
      tx -= side;
      ++ty;
    }
  }
}

// Window sums of a staged tile: the horizontal pass writes hsum, then every thread forms
// the sums of its kRowsPerThread output rows (column threadIdx.x). Expects the staged tile
// to be complete (caller synchronises before); synchronises between the two passes.
template <typename acc_t>
__device__ __forceinline__ void box_tile(const acc_t* __restrict__ staged, acc_t* __restrict__ hsum, int r,
                                         acc_t (&out)[kRowsPerThread]) {
  const int side = halo_side(r);
  const int span = 2 * r + 1;
  const int tid = threadIdx.y * kTileW + threadIdx.x;
  for (int i = tid; i < side * kTileW; i += kThreads) {
    const int row = i / kTileW;
    const int col = i - row * kTileW;
    const acc_t* s = staged + row * side + col;
    acc_t a = acc_t(0);
    for (int d = 0; d < span; ++d) a += s[d];
    hsum[i] = a;
  }
  __syncthreads();
#pragma unroll
  for (int j = 0; j < kRowsPerThread; ++j) out[j] = acc_t(0);
  const int row0 = threadIdx.y * kRowsPerThread;
  const acc_t* h = hsum + row0 * kTileW + threadIdx.x;
  for (int d = 0; d < kRowsPerThread + 2 * r; ++d) {
    const acc_t v = h[d * kTileW];
#pragma unroll
    for (int j = 0; j < kRowsPerThread; ++j) {
      const int e = d - j;
      if (e >= 0 && e < span) out[j] += v;
    }
  }
}

template <typename scalar_t, typename acc_t>
__global__ void __launch_bounds__(kThreads, 4) forward_kernel(const scalar_t* __restrict__ feat,
                                                           const scalar_t* __restrict__ weight,
                                                           scalar_t* __restrict__ avg, scalar_t* __restrict__ mx,
                                                           int C, int H, int W, int r, int channels_per_block,
                                                           acc_t kk_eps) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  acc_t* wt = reinterpret_cast<acc_t*>(shared_raw);
  const int side = halo_side(r);
  acc_t* pt = wt + side * side;
  acc_t* hs = pt + side * side;

  const int groups = max(1, (C + channels_per_block - 1) / channels_per_block);  // C == 0: one group (max only)
  const int n = blockIdx.z / groups;
  const int group = blockIdx.z - n * groups;
  const int c0 = group * channels_per_block;
  const int c1 = min(C, c0 + channels_per_block);
  const int x0 = blockIdx.x * kTileW;
  const int y0 = blockIdx.y * kTileH;
  const int64_t plane = static_cast<int64_t>(H) * W;
  const int x = x0 + threadIdx.x;
  const int row0 = threadIdx.y * kRowsPerThread;

  stage_tile<scalar_t, acc_t, false>(weight + n * plane, nullptr, wt, H, W, x0, y0, r);
  __syncthreads();
  acc_t inv[kRowsPerThread];
  box_tile<acc_t>(wt, hs, r, inv);
#pragma unroll
  for (int j = 0; j < kRowsPerThread; ++j) inv[j] = acc_t(1) / (inv[j] + kk_eps);

  if (group == 0 && x < W) {
    // Local max over in-bounds pixels, first maximum in row-major order, NaN wins.
    for (int j = 0; j < kRowsPerThread; ++j) {
      const int y = y0 + row0 + j;
      if (y >= H) break;
      const int ylo = max(0, y - r) - (y0 - r), yhi = min(H - 1, y + r) - (y0 - r);
      const int xlo = max(0, x - r) - (x0 - r), xhi = min(W - 1, x + r) - (x0 - r);
      acc_t m = wt[ylo * side + xlo];
      bool take;
      for (int ty = ylo; ty <= yhi; ++ty)
        for (int tx = xlo; tx <= xhi; ++tx) m = nan_aware_max_update(wt[ty * side + tx], m, take);
      mx[n * plane + static_cast<int64_t>(y) * W + x] = static_cast<scalar_t>(m);
    }
  }

  for (int c = c0; c < c1; ++c) {
    const int64_t base = (static_cast<int64_t>(n) * C + c) * plane;
    // pt and hs of the previous channel are free: box_tile's barrier separates their last
    // reads from these writes (pt) and the barrier below from the next horizontal pass (hs).
    stage_tile<scalar_t, acc_t, true>(feat + base, wt, pt, H, W, x0, y0, r);
    __syncthreads();
    acc_t s[kRowsPerThread];
    box_tile<acc_t>(pt, hs, r, s);
    if (x < W) {
#pragma unroll
      for (int j = 0; j < kRowsPerThread; ++j) {
        const int y = y0 + row0 + j;
        if (y < H) avg[base + static_cast<int64_t>(y) * W + x] = static_cast<scalar_t>(s[j] * inv[j]);
      }
    }
  }
}

// Backward step 1: inv_den = 1 / (box(w) + k*k*eps) and the in-plane index of each window's max.
template <typename scalar_t, typename acc_t>
__global__ void __launch_bounds__(kThreads) backward_prepare_kernel(const scalar_t* __restrict__ weight,
                                                                    acc_t* __restrict__ inv_den,
                                                                    int32_t* __restrict__ argmax, int H, int W,
                                                                    int r, acc_t kk_eps) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  acc_t* wt = reinterpret_cast<acc_t*>(shared_raw);
  const int side = halo_side(r);
  acc_t* hs = wt + side * side;
  const int n = blockIdx.z;
  const int x0 = blockIdx.x * kTileW;
  const int y0 = blockIdx.y * kTileH;
  const int64_t plane = static_cast<int64_t>(H) * W;
  const int x = x0 + threadIdx.x;
  const int row0 = threadIdx.y * kRowsPerThread;

  stage_tile<scalar_t, acc_t, false>(weight + n * plane, nullptr, wt, H, W, x0, y0, r);
  __syncthreads();
  acc_t s[kRowsPerThread];
  box_tile<acc_t>(wt, hs, r, s);
  if (x >= W) return;
#pragma unroll
  for (int j = 0; j < kRowsPerThread; ++j) {
    const int y = y0 + row0 + j;
    if (y >= H) continue;
    const int64_t o = n * plane + static_cast<int64_t>(y) * W + x;
    inv_den[o] = acc_t(1) / (s[j] + kk_eps);
    const int ylo = max(0, y - r), yhi = min(H - 1, y + r);
    const int xlo = max(0, x - r), xhi = min(W - 1, x + r);
    acc_t m = wt[(ylo - y0 + r) * side + (xlo - x0 + r)];
    int best = ylo * W + xlo;
    bool take;
    for (int yy = ylo; yy <= yhi; ++yy)
      for (int xx = xlo; xx <= xhi; ++xx) {
        m = nan_aware_max_update(wt[(yy - y0 + r) * side + (xx - x0 + r)], m, take);
        if (take) best = yy * W + xx;
      }
    argmax[o] = best;
  }
}

// Backward step 2: gden = -inv_den * sum_c grad_avg[c] * avg[c], one thread per pixel.
template <typename scalar_t, typename acc_t>
__global__ void __launch_bounds__(kThreads) backward_gden_kernel(const scalar_t* __restrict__ grad_avg,
                                                                 const scalar_t* __restrict__ avg,
                                                                 const acc_t* __restrict__ inv_den,
                                                                 acc_t* __restrict__ gden, int64_t N, int C,
                                                                 int64_t plane) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= N * plane) return;
  const int64_t n = i / plane;
  const int64_t p = i - n * plane;
  const scalar_t* g = grad_avg + n * C * plane + p;
  const scalar_t* a = avg + n * C * plane + p;
  acc_t dot = acc_t(0);
#pragma unroll 4
  for (int c = 0; c < C; ++c) dot += static_cast<acc_t>(g[c * plane]) * static_cast<acc_t>(a[c * plane]);
  gden[i] = -dot * inv_den[i];
}

// Backward step 3: per channel group, grad_feat = w * box(g * inv_den) and the group's
// partial sum over its channels of feat * box(g * inv_den).
template <typename scalar_t, typename acc_t>
__global__ void __launch_bounds__(kThreads, 4) backward_main_kernel(
    const scalar_t* __restrict__ grad_avg, const scalar_t* __restrict__ feat, const scalar_t* __restrict__ weight,
    const acc_t* __restrict__ inv_den, scalar_t* __restrict__ grad_feat, acc_t* __restrict__ partial, int C, int H,
    int W, int r, int channels_per_block) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  acc_t* it = reinterpret_cast<acc_t*>(shared_raw);
  const int side = halo_side(r);
  acc_t* pt = it + side * side;
  acc_t* hs = pt + side * side;

  const int groups = (C + channels_per_block - 1) / channels_per_block;
  const int n = blockIdx.z / groups;
  const int group = blockIdx.z - n * groups;
  const int c0 = group * channels_per_block;
  const int c1 = min(C, c0 + channels_per_block);
  const int x0 = blockIdx.x * kTileW;
  const int y0 = blockIdx.y * kTileH;
  const int64_t plane = static_cast<int64_t>(H) * W;
  const int x = x0 + threadIdx.x;
  const int row0 = threadIdx.y * kRowsPerThread;

  stage_tile<acc_t, acc_t, false>(inv_den + n * plane, nullptr, it, H, W, x0, y0, r);
  acc_t wq[kRowsPerThread];
  acc_t part[kRowsPerThread];
#pragma unroll
  for (int j = 0; j < kRowsPerThread; ++j) {
    const int y = y0 + row0 + j;
    wq[j] = (x < W && y < H) ? static_cast<acc_t>(weight[n * plane + static_cast<int64_t>(y) * W + x]) : acc_t(0);
    part[j] = acc_t(0);
  }
  __syncthreads();
  for (int c = c0; c < c1; ++c) {
    const int64_t base = (static_cast<int64_t>(n) * C + c) * plane;
    stage_tile<scalar_t, acc_t, true>(grad_avg + base, it, pt, H, W, x0, y0, r);
    __syncthreads();
    acc_t s[kRowsPerThread];
    box_tile<acc_t>(pt, hs, r, s);
    if (x < W) {
#pragma unroll
      for (int j = 0; j < kRowsPerThread; ++j) {
        const int y = y0 + row0 + j;
        if (y < H) {
          const int64_t o = base + static_cast<int64_t>(y) * W + x;
          grad_feat[o] = static_cast<scalar_t>(wq[j] * s[j]);
          part[j] += static_cast<acc_t>(feat[o]) * s[j];
        }
      }
    }
  }
  if (x < W) {
    acc_t* dst = partial + (static_cast<int64_t>(n) * groups + group) * plane;
#pragma unroll
    for (int j = 0; j < kRowsPerThread; ++j) {
      const int y = y0 + row0 + j;
      if (y < H) dst[static_cast<int64_t>(y) * W + x] = part[j];
    }
  }
}

// Backward step 4: grad_w = sum of the group partials + box(gden) + grad_max of every window
// whose argmax is this pixel (summed in output scan order, like max_pool2d's backward).
template <typename scalar_t, typename acc_t>
__global__ void __launch_bounds__(kThreads) backward_finish_kernel(const acc_t* __restrict__ gden,
                                                                   const acc_t* __restrict__ partial,
                                                                   const scalar_t* __restrict__ grad_max,
                                                                   const int32_t* __restrict__ argmax,
                                                                   scalar_t* __restrict__ grad_weight, int groups,
                                                                   int H, int W, int r) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  acc_t* gt = reinterpret_cast<acc_t*>(shared_raw);
  const int side = halo_side(r);
  acc_t* hs = gt + side * side;
  const int n = blockIdx.z;
  const int x0 = blockIdx.x * kTileW;
  const int y0 = blockIdx.y * kTileH;
  const int64_t plane = static_cast<int64_t>(H) * W;
  const int x = x0 + threadIdx.x;
  const int row0 = threadIdx.y * kRowsPerThread;

  stage_tile<acc_t, acc_t, false>(gden + n * plane, nullptr, gt, H, W, x0, y0, r);
  __syncthreads();
  acc_t s[kRowsPerThread];
  box_tile<acc_t>(gt, hs, r, s);
  if (x >= W) return;
#pragma unroll
  for (int j = 0; j < kRowsPerThread; ++j) {
    const int y = y0 + row0 + j;
    if (y >= H) continue;
    const int64_t q = static_cast<int64_t>(y) * W + x;
    acc_t total = s[j];
    for (int g = 0; g < groups; ++g) total += partial[(static_cast<int64_t>(n) * groups + g) * plane + q];
    const int ylo = max(0, y - r), yhi = min(H - 1, y + r);
    const int xlo = max(0, x - r), xhi = min(W - 1, x + r);
    for (int yy = ylo; yy <= yhi; ++yy)
      for (int xx = xlo; xx <= xhi; ++xx) {
        const int64_t p = n * plane + static_cast<int64_t>(yy) * W + xx;
        if (argmax[p] == static_cast<int32_t>(q)) total += static_cast<acc_t>(grad_max[p]);
      }
    grad_weight[n * plane + q] = static_cast<scalar_t>(total);
  }
}

// ---- Streaming forward ----------------------------------------------------------------------
// One warp walks a 32-column strip of one plane down kStreamRows output rows. Lane l owns
// column x0 + l and also loads the halo: a = v[x0 - R + l] and, for l < 2R, b = v[x0 + 32 - R + l].
// The horizontal window sum of a row is formed with 2R warp shuffles (warp_window), and a
// register ring keeps the horizontal sums of the last 2R + 1 rows; the vertical sum adds the
// ring directly (no running sums: zero-weight regions give exact zeros, and inf/NaN reach
// exactly the windows that hold them, as in the reference). No shared memory, no barriers.
// The ring is indexed by compile-time constants only (the row loop is unrolled by 2R + 1),
// so it stays in registers. Step 1 (stream_prepare_kernel) writes 1 / (box(w) + k*k*eps) and
// the local max per object; step 2 (forward_stream_kernel) handles kStreamChannels channels
// per warp, so each weight and 1 / D load serves several channels.
constexpr int kStreamRows = 64;      // output rows per warp
constexpr int kStreamWarps = 4;      // warps per block (independent of each other)
constexpr int kStreamChannels = 2;   // channels per warp
constexpr int kStreamMaxRadius = 7;  // k <= 15; larger windows use the tile kernel

// Window reduction across the lanes of a warp: lane l gets op over v[x0 - R + l + d], d = 0..2R,
// where a = v[x0 - R + l] and b = v[x0 + 32 - R + l]. For offset d the source lane is
// (l + d) mod 32, and it provides b exactly when it is below d, so one shuffle per offset.
template <int R, typename acc_t, typename Op>
__device__ __forceinline__ acc_t warp_window(acc_t a, acc_t b, int lane, Op op) {
  acc_t s = a;
#pragma unroll
  for (int d = 1; d <= 2 * R; ++d) s = op(s, __shfl_sync(0xffffffffu, lane < d ? b : a, (lane + d) & 31));
  return s;
}

template <typename acc_t>
struct Add {
  __device__ __forceinline__ acc_t operator()(acc_t s, acc_t v) const { return s + v; }
};
template <typename acc_t>
struct NanMax {  // max_pool2d's rule: a NaN always wins
  __device__ __forceinline__ acc_t operator()(acc_t m, acc_t v) const { return (v > m || v != v) ? v : m; }
};

template <typename scalar_t, typename acc_t>
__device__ __forceinline__ acc_t load_or(const scalar_t* __restrict__ p, int y, int x, int H, int W, acc_t fill) {
  return (y >= 0 && y < H && x >= 0 && x < W) ? static_cast<acc_t>(p[static_cast<int64_t>(y) * W + x]) : fill;
}

// Which strip, row chunk, channel group and object a warp owns (strips vary fastest).
struct StreamWork {
  int64_t n;
  int group, y0, x0;
  __device__ StreamWork(int strips, int chunks, int groups) {
    int64_t w = static_cast<int64_t>(blockIdx.x) * kStreamWarps + (threadIdx.x >> 5);
    x0 = static_cast<int>(w % strips) * 32;
    w /= strips;
    y0 = static_cast<int>(w % chunks) * kStreamRows;
    w /= chunks;
    group = static_cast<int>(w % groups);
    n = w / groups;
  }
};

template <typename scalar_t, typename acc_t, int R>
__global__ void __launch_bounds__(32 * kStreamWarps) stream_prepare_kernel(
    const scalar_t* __restrict__ weight, acc_t* __restrict__ inv_den, scalar_t* __restrict__ mx, int64_t N, int H,
    int W, int strips, int chunks, acc_t kk_eps) {
  constexpr int kSpan = 2 * R + 1;
  const StreamWork job(strips, chunks, 1);
  if (job.n >= N) return;  // whole warps only: the shuffles below see all 32 lanes
  const int lane = threadIdx.x & 31;
  const int xa = job.x0 - R + lane, xb = xa + 32, x = job.x0 + lane;
  const int y1 = min(H, job.y0 + kStreamRows);
  const int64_t plane = static_cast<int64_t>(H) * W;
  const scalar_t* w = weight + job.n * plane;
  const acc_t neg_inf = -CUDART_INF_F;
  acc_t sums[kSpan], maxs[kSpan];
#pragma unroll
  for (int j = 0; j < kSpan; ++j) {
    sums[j] = acc_t(0);
    maxs[j] = neg_inf;
  }
  for (int yb = job.y0 - 2 * R; yb < y1; yb += kSpan) {
#pragma unroll
    for (int j = 0; j < kSpan; ++j) {
      const int yo = yb + j, yi = yo + R;  // row yi enters; row yo is complete
      // Outside the image a pixel adds 0 to the sum and -inf to the max (in-bounds max).
      const bool row_in = yi >= 0 && yi < H;
      const bool in_a = row_in && xa >= 0 && xa < W, in_b = row_in && lane < 2 * R && xb < W;
      const acc_t a = load_or<scalar_t, acc_t>(w, yi, xa, H, W, acc_t(0));
      const acc_t b = lane < 2 * R ? load_or<scalar_t, acc_t>(w, yi, xb, H, W, acc_t(0)) : acc_t(0);
      maxs[j] = warp_window<R>(in_a ? a : neg_inf, in_b ? b : neg_inf, lane, NanMax<acc_t>());
      sums[j] = warp_window<R>(a, b, lane, Add<acc_t>());
      if (yo >= job.y0 && yo < y1 && x < W) {
        acc_t s = sums[0], m = maxs[0];
#pragma unroll
        for (int i = 1; i < kSpan; ++i) {
          s += sums[i];
          m = NanMax<acc_t>()(m, maxs[i]);
        }
        const int64_t o = job.n * plane + static_cast<int64_t>(yo) * W + x;
        inv_den[o] = acc_t(1) / (s + kk_eps);
        mx[o] = static_cast<scalar_t>(m);
      }
    }
  }
}

template <typename scalar_t, typename acc_t, int R>
__global__ void __launch_bounds__(32 * kStreamWarps) forward_stream_kernel(
    const scalar_t* __restrict__ feat, const scalar_t* __restrict__ weight, const acc_t* __restrict__ inv_den,
    scalar_t* __restrict__ avg, int64_t N, int C, int H, int W, int strips, int chunks, int groups) {
  constexpr int kSpan = 2 * R + 1;
  constexpr int kC = kStreamChannels;
  const StreamWork job(strips, chunks, groups);
  if (job.n >= N) return;
  const int lane = threadIdx.x & 31;
  const int xa = job.x0 - R + lane, xb = xa + 32, x = job.x0 + lane;
  const int y1 = min(H, job.y0 + kStreamRows);
  const int64_t plane = static_cast<int64_t>(H) * W;
  const scalar_t* w = weight + job.n * plane;
  const acc_t* inv = inv_den + job.n * plane;
  const scalar_t* f[kC];
  int64_t base[kC];
  bool live[kC];
#pragma unroll
  for (int i = 0; i < kC; ++i) {
    const int c = job.group * kC + i;
    live[i] = c < C;
    base[i] = (job.n * C + min(c, C - 1)) * plane;  // a missing last channel re-reads C - 1
    f[i] = feat + base[i];
  }
  acc_t ring[kC][kSpan];
#pragma unroll
  for (int i = 0; i < kC; ++i)
#pragma unroll
    for (int j = 0; j < kSpan; ++j) ring[i][j] = acc_t(0);
  for (int yb = job.y0 - 2 * R; yb < y1; yb += kSpan) {
#pragma unroll
    for (int j = 0; j < kSpan; ++j) {
      const int yo = yb + j, yi = yo + R;
      const acc_t wa = load_or<scalar_t, acc_t>(w, yi, xa, H, W, acc_t(0));
      const acc_t wb = lane < 2 * R ? load_or<scalar_t, acc_t>(w, yi, xb, H, W, acc_t(0)) : acc_t(0);
#pragma unroll
      for (int i = 0; i < kC; ++i) {
        const acc_t pa = wa * load_or<scalar_t, acc_t>(f[i], yi, xa, H, W, acc_t(0));
        const acc_t pb = lane < 2 * R ? wb * load_or<scalar_t, acc_t>(f[i], yi, xb, H, W, acc_t(0)) : acc_t(0);
        ring[i][j] = warp_window<R>(pa, pb, lane, Add<acc_t>());
      }
      if (yo >= job.y0 && yo < y1 && x < W) {
        const int64_t q = static_cast<int64_t>(yo) * W + x;
        const acc_t d = inv[q];
#pragma unroll
        for (int i = 0; i < kC; ++i) {
          acc_t s = ring[i][0];
#pragma unroll
          for (int t = 1; t < kSpan; ++t) s += ring[i][t];
          if (live[i]) avg[base[i] + q] = static_cast<scalar_t>(s * d);
        }
      }
    }
  }
}

// Device attribute of the current device (ATen/cuda/CUDAContext.h is avoided on purpose: it
// pulls in cuSPARSE/cuBLAS headers that a minimal CUDA toolkit does not ship).
inline int device_attribute(cudaDeviceAttr attr) {
  int device = 0;
  C10_CUDA_CHECK(cudaGetDevice(&device));
  int value = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&value, attr, device));
  return value;
}

// Channels per block: enough blocks for about two full waves of the device.
template <typename Kernel>
int channels_per_block(Kernel kernel, size_t smem, int64_t tiles_times_n, int C) {
  int blocks_per_sm = 0;
  C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_sm, kernel, kThreads, smem));
  const int sms = device_attribute(cudaDevAttrMultiProcessorCount);
  const int64_t target = 2 * static_cast<int64_t>(std::max(blocks_per_sm, 1)) * sms;
  int64_t groups = (target + tiles_times_n - 1) / tiles_times_n;
  groups = std::clamp<int64_t>(groups, 1, std::max(C, 1));
  const int cpb = static_cast<int>((C + groups - 1) / groups);
  return std::max(cpb, 1);
}

template <typename Kernel>
void allow_shared(Kernel kernel, size_t smem) {
  const size_t limit = static_cast<size_t>(device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin));
  check_limit(smem <= limit, "local_refine (CUDA): kernel_size too large for the device's shared memory; bytes needed: ",
              static_cast<int64_t>(smem));
  if (smem > 48 * 1024) {
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  }
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Runs f(scalar_t{}) for the floating dtypes (AT_DISPATCH without its error path: the
// checks in local_refine.cpp reject other dtypes before this is reached).
template <typename F>
void dispatch_floating(at::ScalarType type, const F& f) {
  switch (type) {
    case at::kFloat: f(float{}); break;
    case at::kDouble: f(double{}); break;
    case at::kHalf: f(at::Half{}); break;
    case at::kBFloat16: f(at::BFloat16{}); break;
    default: check_limit(false, "local_refine (CUDA): unsupported dtype, code ", static_cast<int64_t>(type));
  }
}

std::tuple<at::Tensor, at::Tensor> local_refine_cuda(const at::Tensor& feat, const at::Tensor& weight,
                                                      int64_t kernel_size, double eps) {
  check_forward_args(feat, weight, kernel_size, eps);
  check_device(feat, true, "local_refine (CUDA kernel)");
  const c10::cuda::CUDAGuard guard(feat.device());
  const at::Tensor f = feat.contiguous();
  const at::Tensor w = weight.contiguous();
  at::Tensor avg = at::empty(f.sizes(), f.options());
  at::Tensor mx = at::empty(w.sizes(), w.options());
  const int64_t N = f.size(0), C = f.size(1), H = f.size(2), W = f.size(3);
  if (N * H * W == 0) return {avg, mx};
  // A radius beyond the image changes no window (they are clipped to the image): clamping it
  // keeps the shared tiles small and the int cast exact; kk_eps still uses kernel_size.
  const int r = static_cast<int>(std::min<int64_t>(kernel_size / 2, std::max(H, W) - 1));
  check_limit(C <= INT32_MAX, "local_refine (CUDA): too many channels, C=", C);
  const int64_t tiles_x = ceil_div(W, kTileW), tiles_y = ceil_div(H, kTileH);
  check_limit(tiles_y <= 65535, "local_refine (CUDA): too many rows, H=", H);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  dispatch_floating(f.scalar_type(), [&](auto tag) {
    using scalar_t = decltype(tag);
    using acc_t = at::acc_type<scalar_t, true>;
    auto kernel = forward_kernel<scalar_t, acc_t>;
    const size_t smem = shared_bytes<acc_t>(r, 2);
    allow_shared(kernel, smem);
    const int cpb = C > 0 ? channels_per_block(kernel, smem, tiles_x * tiles_y * N, static_cast<int>(C)) : 1;
    const int64_t groups = C > 0 ? ceil_div(C, cpb) : 1;
    check_limit(N * groups <= 65535, "local_refine (CUDA): too many objects, N=", N);
    const dim3 grid(static_cast<unsigned>(tiles_x), static_cast<unsigned>(tiles_y),
                    static_cast<unsigned>(N * groups));
    const dim3 block(kTileW, kBlockY);
    const acc_t kk_eps = static_cast<acc_t>(static_cast<double>(kernel_size) * static_cast<double>(kernel_size) * eps);
    kernel<<<grid, block, smem, stream>>>(f.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(),
                                          avg.mutable_data_ptr<scalar_t>(), mx.mutable_data_ptr<scalar_t>(),
                                          static_cast<int>(C), static_cast<int>(H), static_cast<int>(W), r, cpb,
                                          kk_eps);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {avg, mx};
}

// Launches the streaming kernels for a compile-time radius R.
template <typename scalar_t, typename acc_t, int R>
void launch_stream(const at::Tensor& f, const at::Tensor& w, at::Tensor& avg, at::Tensor& mx, acc_t kk_eps,
                   cudaStream_t stream) {
  const int64_t N = f.size(0), C = f.size(1), H = f.size(2), W = f.size(3);
  const int strips = static_cast<int>(ceil_div(W, 32)), chunks = static_cast<int>(ceil_div(H, kStreamRows));
  const int groups = static_cast<int>(ceil_div(C, kStreamChannels));
  at::Tensor inv_den = at::empty({N, H, W}, f.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
  const int64_t prep_warps = N * chunks * strips;
  stream_prepare_kernel<scalar_t, acc_t, R>
      <<<static_cast<unsigned>(ceil_div(prep_warps, kStreamWarps)), 32 * kStreamWarps, 0, stream>>>(
          w.const_data_ptr<scalar_t>(), inv_den.mutable_data_ptr<acc_t>(), mx.mutable_data_ptr<scalar_t>(), N,
          static_cast<int>(H), static_cast<int>(W), strips, chunks, kk_eps);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (C == 0) return;
  const int64_t warps = N * groups * chunks * strips;
  forward_stream_kernel<scalar_t, acc_t, R>
      <<<static_cast<unsigned>(ceil_div(warps, kStreamWarps)), 32 * kStreamWarps, 0, stream>>>(
          f.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(), inv_den.const_data_ptr<acc_t>(),
          avg.mutable_data_ptr<scalar_t>(), N, static_cast<int>(C), static_cast<int>(H), static_cast<int>(W), strips,
          chunks, groups);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Forward with the streaming kernels (same contract as local_refine_cuda); windows up to
// k = 15 (radius 7). Not the default yet: see the note at the top of this file.
std::tuple<at::Tensor, at::Tensor> local_refine_stream_cuda(const at::Tensor& feat, const at::Tensor& weight,
                                                             int64_t kernel_size, double eps) {
  check_forward_args(feat, weight, kernel_size, eps);
  check_device(feat, true, "local_refine_stream (CUDA kernel)");
  const int64_t H = feat.size(2), W = feat.size(3);
  // A radius beyond the image changes no window (they are clipped to the image).
  const int64_t r = std::min<int64_t>(kernel_size / 2, std::max<int64_t>(std::max(H, W) - 1, 0));
  check_limit(r <= kStreamMaxRadius, "local_refine_stream (CUDA): the window radius must be at most 7, got ", r);
  check_limit(feat.size(1) <= INT32_MAX, "local_refine_stream (CUDA): too many channels, C=", feat.size(1));
  const int64_t warps = feat.size(0) * ceil_div(feat.size(1), kStreamChannels) * ceil_div(H, kStreamRows) *
                        ceil_div(W, 32);
  check_limit(ceil_div(warps, kStreamWarps) <= INT32_MAX, "local_refine_stream (CUDA): input too large, N=",
              feat.size(0));
  const c10::cuda::CUDAGuard guard(feat.device());
  const at::Tensor f = feat.contiguous();
  const at::Tensor w = weight.contiguous();
  at::Tensor avg = at::empty(f.sizes(), f.options());
  at::Tensor mx = at::empty(w.sizes(), w.options());
  if (f.size(0) * H * W == 0) return {avg, mx};
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  dispatch_floating(f.scalar_type(), [&](auto tag) {
    using scalar_t = decltype(tag);
    using acc_t = at::acc_type<scalar_t, true>;
    const acc_t kk_eps = static_cast<acc_t>(static_cast<double>(kernel_size) * static_cast<double>(kernel_size) * eps);
    switch (r) {
      case 0: launch_stream<scalar_t, acc_t, 0>(f, w, avg, mx, kk_eps, stream); break;
      case 1: launch_stream<scalar_t, acc_t, 1>(f, w, avg, mx, kk_eps, stream); break;
      case 2: launch_stream<scalar_t, acc_t, 2>(f, w, avg, mx, kk_eps, stream); break;
      case 3: launch_stream<scalar_t, acc_t, 3>(f, w, avg, mx, kk_eps, stream); break;
      case 4: launch_stream<scalar_t, acc_t, 4>(f, w, avg, mx, kk_eps, stream); break;
      case 5: launch_stream<scalar_t, acc_t, 5>(f, w, avg, mx, kk_eps, stream); break;
      case 6: launch_stream<scalar_t, acc_t, 6>(f, w, avg, mx, kk_eps, stream); break;
      default: launch_stream<scalar_t, acc_t, 7>(f, w, avg, mx, kk_eps, stream); break;
    }
  });
  return {avg, mx};
}

std::tuple<at::Tensor, at::Tensor> local_refine_backward_cuda(const at::Tensor& grad_avg, const at::Tensor& grad_max,
                                                               const at::Tensor& feat, const at::Tensor& weight,
                                                               const at::Tensor& avg, int64_t kernel_size,
                                                               double eps) {
  check_backward_args(grad_avg, grad_max, feat, weight, avg, kernel_size, eps);
  check_device(feat, true, "local_refine_backward (CUDA kernel)");
  const c10::cuda::CUDAGuard guard(feat.device());
  const at::Tensor ga = grad_avg.contiguous();
  const at::Tensor gm = grad_max.contiguous();
  const at::Tensor f = feat.contiguous();
  const at::Tensor w = weight.contiguous();
  const at::Tensor a = avg.contiguous();
  at::Tensor gf = at::empty(f.sizes(), f.options());
  at::Tensor gw = at::empty(w.sizes(), w.options());
  const int64_t N = f.size(0), C = f.size(1), H = f.size(2), W = f.size(3);
  if (N * H * W == 0) return {gf, gw};
  // A radius beyond the image changes no window (they are clipped to the image): clamping it
  // keeps the shared tiles small and the int cast exact; kk_eps still uses kernel_size.
  const int r = static_cast<int>(std::min<int64_t>(kernel_size / 2, std::max(H, W) - 1));
  check_limit(C <= INT32_MAX, "local_refine_backward (CUDA): too many channels, C=", C);
  const int64_t plane = H * W;
  const int64_t tiles_x = ceil_div(W, kTileW), tiles_y = ceil_div(H, kTileH);
  check_limit(tiles_y <= 65535, "local_refine_backward (CUDA): too many rows, H=", H);
  check_limit(N <= 65535, "local_refine_backward (CUDA): too many objects, N=", N);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const dim3 block(kTileW, kBlockY);
  dispatch_floating(f.scalar_type(), [&](auto tag) {
    using scalar_t = decltype(tag);
    using acc_t = at::acc_type<scalar_t, true>;
    const auto acc_dtype = c10::CppTypeToScalarType<acc_t>::value;
    const auto acc_options = f.options().dtype(acc_dtype);
    at::Tensor inv_den = at::empty({N, H, W}, acc_options);
    at::Tensor gden = at::empty({N, H, W}, acc_options);
    at::Tensor argmax = at::empty({N, H, W}, f.options().dtype(at::kInt));
    const acc_t kk_eps = static_cast<acc_t>(static_cast<double>(kernel_size) * static_cast<double>(kernel_size) * eps);
    const dim3 grid_n(static_cast<unsigned>(tiles_x), static_cast<unsigned>(tiles_y), static_cast<unsigned>(N));

    auto prepare = backward_prepare_kernel<scalar_t, acc_t>;
    const size_t smem1 = shared_bytes<acc_t>(r, 1);
    allow_shared(prepare, smem1);
    prepare<<<grid_n, block, smem1, stream>>>(w.const_data_ptr<scalar_t>(), inv_den.mutable_data_ptr<acc_t>(),
                                              argmax.mutable_data_ptr<int32_t>(), static_cast<int>(H),
                                              static_cast<int>(W), r, kk_eps);
    C10_CUDA_KERNEL_LAUNCH_CHECK();

    const int64_t pixels = N * plane;
    backward_gden_kernel<scalar_t, acc_t>
        <<<static_cast<unsigned>(ceil_div(pixels, kThreads)), kThreads, 0, stream>>>(
            ga.const_data_ptr<scalar_t>(), a.const_data_ptr<scalar_t>(), inv_den.const_data_ptr<acc_t>(),
            gden.mutable_data_ptr<acc_t>(), N, static_cast<int>(C), plane);
    C10_CUDA_KERNEL_LAUNCH_CHECK();

    auto main = backward_main_kernel<scalar_t, acc_t>;
    const size_t smem2 = shared_bytes<acc_t>(r, 2);
    allow_shared(main, smem2);
    const int cpb = C > 0 ? channels_per_block(main, smem2, tiles_x * tiles_y * N, static_cast<int>(C)) : 1;
    const int64_t groups = C > 0 ? ceil_div(C, cpb) : 0;
    at::Tensor partial = at::empty({N, std::max<int64_t>(groups, 1), H, W}, acc_options);
    if (groups > 0) {
      check_limit(N * groups <= 65535, "local_refine_backward (CUDA): too many objects, N=", N);
      const dim3 grid(static_cast<unsigned>(tiles_x), static_cast<unsigned>(tiles_y),
                      static_cast<unsigned>(N * groups));
      main<<<grid, block, smem2, stream>>>(ga.const_data_ptr<scalar_t>(), f.const_data_ptr<scalar_t>(),
                                           w.const_data_ptr<scalar_t>(), inv_den.const_data_ptr<acc_t>(),
                                           gf.mutable_data_ptr<scalar_t>(), partial.mutable_data_ptr<acc_t>(),
                                           static_cast<int>(C), static_cast<int>(H), static_cast<int>(W), r, cpb);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }

    auto finish = backward_finish_kernel<scalar_t, acc_t>;
    allow_shared(finish, smem1);
    finish<<<grid_n, block, smem1, stream>>>(gden.const_data_ptr<acc_t>(), partial.const_data_ptr<acc_t>(),
                                             gm.const_data_ptr<scalar_t>(), argmax.const_data_ptr<int32_t>(),
                                             gw.mutable_data_ptr<scalar_t>(), static_cast<int>(groups),
                                             static_cast<int>(H), static_cast<int>(W), r);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {gf, gw};
}

}  // namespace

TORCH_LIBRARY_IMPL(afb_urr, CUDA, m) {
  m.impl("local_refine", &local_refine_cuda);
  m.impl("local_refine_backward", &local_refine_backward_cuda);
  m.impl("local_refine_stream", &local_refine_stream_cuda);
}

}  // namespace afb_urr
