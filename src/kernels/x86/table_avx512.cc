// The AVX-512 kernel table: fast paths where they exist, the references elsewhere.
#include "kernels/ref/ref_kernels.h"
#include "kernels/x86/attention_x86.h"
#include "kernels/x86/kernels_x86.h"
#include "kernels/x86/ops_x86.h"

namespace slimlm::kernels::avx512 {

const KernelTable& Table() {
  static const KernelTable table = [] {
    KernelTable t = ref::Table();
    t.isa = Isa::kAvx512;
    t.row_block = 16;
    t.packed_bytes = PackedBytes;
    t.pack = Pack;
    t.activation_row_bytes = ActivationRowBytes;
    t.convert_activation = ConvertActivation;
    t.matmul = MatMul;
    t.from_f32 = FromF32;
    t.rms_norm = RmsNorm;
    t.silu_gate = SiluGate;
    t.softmax = Softmax;
    t.attention = Attention;
    t.flash_attention = FlashAttention;
    return t;
  }();
  return table;
}

}  // namespace slimlm::kernels::avx512
