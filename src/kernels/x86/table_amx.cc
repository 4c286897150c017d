// The AMX kernel table: the AVX-512 one, with the int8 products of several tokens on tiles.
#include "kernels/x86/kernels_x86.h"

namespace slimlm::kernels::amx {

const KernelTable& Table() {
  static const KernelTable table = [] {
    KernelTable t = avx512::Table();
    t.isa = Isa::kAmx;
    t.matmul = MatMul;
    return t;
  }();
  return table;
}

}  // namespace slimlm::kernels::amx
