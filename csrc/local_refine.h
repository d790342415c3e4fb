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
#include <c10/util/Exception.h>

#include <cmath>
#include <cstdint>
#include <tuple>

namespace afb_urr {

// Validates the forward arguments; every failure names the argument and what was expected.
inline void check_forward_args(const at::Tensor& feat, const at::Tensor& weight, int64_t kernel_size,
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

// Validates the backward arguments (gradients and saved tensors against the forward shapes).
inline void check_backward_args(const at::Tensor& grad_avg, const at::Tensor& grad_max, const at::Tensor& feat,
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

}  // namespace afb_urr
