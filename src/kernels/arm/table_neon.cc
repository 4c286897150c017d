// The NEON kernel table: every operation of KernelTable has a NEON version here.
#include "kernels/arm/kernels_arm.h"
#include "kernels/packed/packed_layout.h"
#include "kernels/ref/ref_kernels.h"

namespace slimlm::kernels::neon {

const KernelTable& Table() {
  static const KernelTable table = [] {
    KernelTable t = ref::Table();
    t.isa = Isa::kNeon;
    t.row_block = packed::kPackRows;
    t.packed_bytes = PackedBytes;
    t.pack = Pack;
    t.activation_row_bytes = ActivationRowBytes;
    t.convert_activation = ConvertActivation;
    t.matmul = MatMul;
    t.from_f32 = FromF32;
    t.rms_norm = RmsNorm;
    t.rope = Rope;
    t.softmax = Softmax;
    t.silu_gate = SiluGate;
    t.attention = Attention;
    t.flash_attention = FlashAttention;
    return t;
  }();
  return table;
}

}  // namespace slimlm::kernels::neon
