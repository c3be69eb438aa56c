// Export of a packed model's scalar codes (methods rtn and gptq, stored in
// the rtn layout of docs/format.md §4.2) as a standard GPTQ checkpoint,
// the format transformers (through optimum/GPTQModel), GPTQModel, vLLM and
// others load. docs/format.md §13 says what maps and what cannot.
#pragma once

#include <cstdint>
#include <filesystem>

#include "absl/status/status.h"
#include "common/packed/packed_model.h"

namespace glvq {

// GPTQ widths: 32 / bits codes share an int32 (3 bits: 32 codes in three).
bool IsGptqBits(int bits);  // 2, 3, 4 or 8

// GPTQ's two checkpoint layouts: they differ only in the stored zero point.
enum class GptqFormat {
  kV1,  // checkpoint_format "gptq": qzeros hold zero − 1 (AutoGPTQ, vLLM, ...)
  kV2,  // checkpoint_format "gptq_v2": qzeros hold the zero point (GPTQModel)
};

// Writes `model` into `out_dir` (which must not exist; written atomically
// as a whole) as a GPTQ checkpoint (sym false, desc_act false): every
// quantized weight `P.weight` of shape [out, in] becomes
//   P.qweight  I32 [in·bits/32, out]  codes along the input dimension,
//                                     LSB-first, 32/bits per word
//   P.qzeros   I32 [G, out·bits/32]   zero point per (group, output) (v1:
//                                     minus 1), packed the same way along outputs
//   P.scales   F16 [G, out]           scale per (group, output)
//   P.g_idx    I32 [in]               group of each input column
// so w[o][i] = scales[g][o] · (q[i][o] − zero[g][o]), g = g_idx[i].
// Pass-through tensors, config.json (with a GPTQ quantization_config) and
// the companion files are carried over.
// FAILED_PRECONDITION, naming the tensor, unless every quantized tensor is
// method rtn or gptq without rht_seed, all with one width in IsGptqBits and
// one group size, with integer zero points in 0..2^bits − 1 (v1: 1..2^bits −
// 1, as zero − 1 must fit), and scales that F16 holds as normal numbers;
// in·bits and out·bits multiples of 32.
absl::Status ExportGptq(const PackedModel& model, const std::filesystem::path& out_dir,
                        GptqFormat format);

}  // namespace glvq
