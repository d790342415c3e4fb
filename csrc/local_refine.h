// Fused uncertain-region refinement op: declarations shared by the CPU and CUDA files.
//
// For feat (N x C x H x W) and weight (N x 1 x H x W) and an odd window k (radius r = k / 2):
//   avg[n, c] = box(feat[n, c] * weight[n]) / (box(weight[n]) + k * k * eps)
//   max[n]    = maxpool(weight[n])
// where box is the k x k window SUM over in-bounds pixels (zero padding) and maxpool takes
// the maximum over in-bounds pixels only. Dividing both sums by k * k gives the
// count_include_pad average pooling form of the PyTorch reference
// (avg_pool2d(feat * weight) / (avg_pool2d(weight) + eps)); the two are algebraically equal.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <tuple>

namespace afb_urr {

// Argument checks. They are defined once, in local_refine.cpp, and every error message is
// built and thrown there (never in the .cu translation unit, whose host code nvcc may
// compile with another g++ than the .cpp file: inline functions and template instances that
// build c10::Error messages would then exist in two incompatible copies, of which the linker
// keeps one). Each entry point calls them first, on the calling thread, before it allocates
// or starts any parallel region or kernel, so a bad argument raises RuntimeError in Python.

// Validates the forward arguments; every failure names the argument and what was expected.
void check_forward_args(const at::Tensor& feat, const at::Tensor& weight, int64_t kernel_size, double eps);

// Validates the backward arguments (gradients and saved tensors against the forward shapes).
void check_backward_args(const at::Tensor& grad_avg, const at::Tensor& grad_max, const at::Tensor& feat,
                         const at::Tensor& weight, const at::Tensor& avg, int64_t kernel_size, double eps);

// `op` needs its tensors on a CUDA device (cuda) or on the CPU (!cuda).
void check_device(const at::Tensor& feat, bool cuda, const char* op);

// Raises "<what><value>" unless ok (the CUDA file's size limits).
void check_limit(bool ok, const char* what, int64_t value);

}  // namespace afb_urr
