// Vector math for NEON kernels: exp over 4 floats, accurate to about 1 ulp, and small helpers.
//
// Include only from the NEON kernel files (names with "neon"); every function is inline.
#ifndef SLIMLM_KERNELS_ARM_VEC_MATH_NEON_H_
#define SLIMLM_KERNELS_ARM_VEC_MATH_NEON_H_

#if !defined(__ARM_NEON)
#error "vec_math_neon.h needs a file compiled for AArch64 with NEON"
#endif

#include <arm_neon.h>

#include <cstdint>
#include <cstring>

namespace slimlm::kernels::neon {

// exp(x) for each lane, within 2 ulp of the exact value for every x. Gives +inf past 88.72,
// 0 or a subnormal below -87.34 (0 below -103.98), NaN for NaN, exp(-inf) = 0, so that masked
// scores of -inf weigh nothing.
//
// The method of the AVX2 path (vec_math_avx2.h): x = n ln2 + r with n an integer and
// |r| <= ln2/2; e^r by its Taylor polynomial of degree 7; 2^n applied as two exponent-field powers
// 2^(n/2) and 2^(n - n/2), each a normal float for n in [-150, 128], so that the product rounds
// once and overflow and gradual underflow come out right. ln2 is split in two so that n * ln2_hi
// is exact.
inline float32x4_t Exp(float32x4_t x) {
  const float32x4_t kLog2e = vdupq_n_f32(1.44269504088896341f);
  const float32x4_t kLn2Hi = vdupq_n_f32(0.693359375f);
  const float32x4_t kLn2Lo = vdupq_n_f32(-2.12194440e-4f);
  // Clamp so that n stays in [-150, 128]; FMIN and FMAX return NaN when either input is NaN.
  x = vminq_f32(vdupq_n_f32(89.0f), x);
  x = vmaxq_f32(vdupq_n_f32(-104.0f), x);
  const float32x4_t n = vrndnq_f32(vmulq_f32(x, kLog2e));
  float32x4_t r = vfmsq_f32(x, n, kLn2Hi);
  r = vfmsq_f32(r, n, kLn2Lo);
  float32x4_t p = vdupq_n_f32(1.0f / 5040.0f);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 720.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  // n is an integer in [-150, 128] (NaN converts to 0; the NaN in p survives the product).
  const int32x4_t ni = vcvtq_s32_f32(n);
  const int32x4_t n1 = vshrq_n_s32(ni, 1);
  const int32x4_t n2 = vsubq_s32(ni, n1);
  const int32x4_t bias = vdupq_n_s32(127);
  const float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, bias), 23));
  const float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, bias), 23));
  return vmulq_f32(vmulq_f32(p, s1), s2);
}

// The first n (0..4) floats at x, the other lanes 0.
inline float32x4_t LoadPartial(const float* x, int64_t n) {
  float tmp[4] = {};
  std::memcpy(tmp, x, static_cast<size_t>(n) * sizeof(float));
  return vld1q_f32(tmp);
}

// Stores the first n (0..4) lanes of v at y.
inline void StorePartial(float* y, float32x4_t v, int64_t n) {
  float tmp[4];
  vst1q_f32(tmp, v);
  std::memcpy(y, tmp, static_cast<size_t>(n) * sizeof(float));
}

// f32 -> f16 bits and back with FCVT, which rounds to nearest even as F32ToF16 (half.h) does.
// NEON files use these rather than half.h's inline functions, so that no out-of-line copy of
// those compiled for Armv8.2 can be chosen by the linker for code that runs on any CPU.
inline uint16_t HalfBits(float x) {
  return vget_lane_u16(vreinterpret_u16_f16(vcvt_f16_f32(vdupq_n_f32(x))), 0);
}
inline float RoundThroughHalf(float x) {
  return vgetq_lane_f32(vcvt_f32_f16(vcvt_f16_f32(vdupq_n_f32(x))), 0);
}

// Four bytes at p (any alignment) in every 32-bit lane: the activation operand of sdot.
inline int8x16_t BroadcastQuad(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

}  // namespace slimlm::kernels::neon

#endif  // SLIMLM_KERNELS_ARM_VEC_MATH_NEON_H_
