// A fast 64-bit content hash (FNV-1a over 64-bit words, a byte at a time for tails). Not a
// cryptographic hash: it identifies inputs in provenance metadata (which model a file was
// quantized from, which text calibrated it); any changed byte changes the result.
#ifndef SLIMLM_CORE_HASH_H_
#define SLIMLM_CORE_HASH_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace slimlm {

inline constexpr uint64_t kHashSeed = 0xcbf29ce484222325ULL;

// Mixes n bytes into h; start from kHashSeed.
inline uint64_t HashBytes(const void* data, size_t n, uint64_t h = kHashSeed) {
  constexpr uint64_t kPrime = 0x100000001b3ULL;
  const uint8_t* p = static_cast<const uint8_t*>(data);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * kPrime;
  }
  for (; i < n; ++i) h = (h ^ p[i]) * kPrime;
  return h;
}

// SplitMix64's step and output function: Mix64(x) scrambles x + the golden-ratio increment into
// 64 well-mixed bits. A counter-based generator (Mix64(seed + i)) whose values depend on the
// seed and the index alone: random orders and masks that do not depend on threads or libraries.
inline constexpr uint64_t kGoldenGamma = 0x9e3779b97f4a7c15ULL;
inline uint64_t Mix64(uint64_t x) {
  x += kGoldenGamma;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace slimlm

#endif  // SLIMLM_CORE_HASH_H_
