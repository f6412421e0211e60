// RmsNorm, the activation kernels (SiLU, SwiGLU combine, sigmoid gate), Axpby and RoPE: single
// passes over their inputs, bandwidth-bound. Each follows kernels/cpu/reference.cc's formula in
// the same operation order; the differences are expf / sincosf (CUDA's, within 2 ulp, not
// glibc's) and the order of RmsNorm's sum of squares (a block tree instead of a sequential loop).
// nvcc's default IEEE division and square root are kept (no --use_fast_math).
#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"

namespace mmx::kernels::cuda::internal {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65536;

unsigned StreamBlocks(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

__device__ __forceinline__ float Sigmoid(float v) { return 1.f / (1.f + expf(-v)); }

// One block per row: out = x / sqrt(mean(x^2) + eps) * gamma. In place is fine: every element
// is read before it is written by the same thread, and the reduction separates the passes.
__global__ void __launch_bounds__(kThreads)
    RmsNormKernel(const float* x, int64_t n, const float* __restrict__ gamma, float eps, float* out) {
  __shared__ float scratch[kWarpSize];
  const float* xt = x + static_cast<int64_t>(blockIdx.x) * n;
  float* ot = out + static_cast<int64_t>(blockIdx.x) * n;
  float ss = 0.f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) ss = fmaf(xt[i], xt[i], ss);
  ss = BlockSum(ss, scratch);
  const float r = 1.f / sqrtf(ss / static_cast<float>(n) + eps);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) ot[i] = xt[i] * r * gamma[i];
}

__global__ void SiluMulKernel(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    out[i] = g * Sigmoid(g) * up[i];
  }
}

__global__ void SigmoidMulKernel(const float* gate, float* x, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    x[i] = Sigmoid(gate[i]) * x[i];
  }
}

__global__ void SiluKernel(float* x, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float v = x[i];
    x[i] = v * Sigmoid(v);
  }
}

// out may alias a or b: each element is read before it is written, by the same thread.
__global__ void AxpbyKernel(float alpha, const float* a, float beta, const float* b, int64_t n, float* out) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    // Explicit roundings: two products and a sum, as the formula reads, never contracted to an FMA.
    out[i] = __fadd_rn(__fmul_rn(alpha, a[i]), __fmul_rn(beta, b[i]));
  }
}

// One thread per rotated pair (token, head, i < rotary_dim / 2).
__global__ void RopeKernel(RopeArgs a) {
  const int half = a.rotary_dim / 2;
  const int64_t total = a.num_tokens * a.num_heads * half;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < total;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int i = static_cast<int>(p % half);
    const int64_t head_row = p / half;  // t * num_heads + h
    const int64_t t = head_row / a.num_heads;
    const float angle = static_cast<float>(a.positions[t]) * a.inv_freq[i];
    float s, c;
    sincosf(angle, &s, &c);
    float* xh = a.x + head_row * a.head_dim;
    const float x0 = xh[i], x1 = xh[i + half];
    // Explicit roundings: no FMA contraction, so the products round as in the CPU kernels.
    xh[i] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
    xh[i + half] = __fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, s));
  }
}

}  // namespace

cudaError_t LaunchRmsNorm(const float* x, int64_t num_tokens, int64_t n, const float* gamma, float eps,
                          float* out, cudaStream_t stream) {
  RmsNormKernel<<<static_cast<unsigned>(num_tokens), kThreads, 0, stream>>>(x, n, gamma, eps, out);
  return cudaGetLastError();
}

cudaError_t LaunchSiluMul(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream) {
  SiluMulKernel<<<StreamBlocks(n), kThreads, 0, stream>>>(gate, up, n, out);
  return cudaGetLastError();
}

cudaError_t LaunchSigmoidMulInPlace(const float* gate, float* x, int64_t n, cudaStream_t stream) {
  SigmoidMulKernel<<<StreamBlocks(n), kThreads, 0, stream>>>(gate, x, n);
  return cudaGetLastError();
}

cudaError_t LaunchSiluInPlace(float* x, int64_t n, cudaStream_t stream) {
  SiluKernel<<<StreamBlocks(n), kThreads, 0, stream>>>(x, n);
  return cudaGetLastError();
}

cudaError_t LaunchAxpby(float alpha, const float* a, float beta, const float* b, int64_t n, float* out,
                        cudaStream_t stream) {
  AxpbyKernel<<<StreamBlocks(n), kThreads, 0, stream>>>(alpha, a, beta, b, n, out);
  return cudaGetLastError();
}

cudaError_t LaunchApplyRope(const RopeArgs& args, cudaStream_t stream) {
  const int64_t pairs = args.num_tokens * args.num_heads * (args.rotary_dim / 2);
  RopeKernel<<<StreamBlocks(pairs), kThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

}  // namespace mmx::kernels::cuda::internal
