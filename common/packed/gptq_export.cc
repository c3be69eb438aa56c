#include "common/packed/gptq_export.h"

#include <cmath>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/file_util.h"
#include "common/base/status_macros.h"
#include "common/base/string_view.h"
#include "common/packed/bitpack.h"
#include "common/packed/companion_files.h"
#include "common/safetensors/writer.h"
#include "nlohmann/json.hpp"

namespace glvq {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr std::string_view kWeightSuffix = ".weight";
constexpr float kMinNormalF16 = 6.103515625e-05f;  // 2^-14
constexpr float kMaxF16 = 65504.0f;

absl::Status NotExportable(const std::string& name, std::string_view why) {
  return absl::FailedPreconditionError(
      absl::StrCat("tensor '", name, "' cannot be written as GPTQ: ", Sv(why)));
}

// One quantized tensor's GPTQ arrays, in memory.
struct GptqTensor {
  std::vector<int32_t> qweight, qzeros, g_idx;
  std::vector<uint16_t> scales;
};

// Packs `values` (each < 2^bits) LSB-first into little-endian 32-bit words.
absl::Status PackWords(std::span<const uint8_t> values, int bits, std::span<int32_t> words) {
  std::vector<std::byte> bytes(words.size() * 4);
  RETURN_IF_ERROR(PackCodes(values, bits, bytes));
  std::memcpy(words.data(), bytes.data(), bytes.size());  // little-endian host
  return absl::OkStatus();
}

absl::Status CheckTensor(const QuantizedTensor& qt, int bits, int64_t group_size,
                         GptqFormat format) {
  if (qt.method != "rtn") return NotExportable(qt.name, absl::StrCat("method ", qt.method));
  if (!qt.rht_seed.empty()) {
    return NotExportable(qt.name, "it is stored after a Hadamard rotation (quantize with rht off)");
  }
  // Whole int32 words of codes along each side.
  if (qt.rows * bits % 32 != 0 || qt.cols * bits % 32 != 0) {
    return NotExportable(qt.name, absl::StrCat("its sides must be multiples of ",
                                               32 / std::gcd(32, bits), " at ", bits, " bits"));
  }
  for (uint8_t b : qt.bits) {
    if (b != bits) return NotExportable(qt.name, "its groups have different widths");
  }
  if (qt.group_size != group_size) return NotExportable(qt.name, "another group size");
  const double top = std::ldexp(1.0, bits) - 1;
  for (size_t i = 0; i < qt.zero.size(); ++i) {
    const float z = qt.zero[i];
    if (z != std::nearbyint(z) || z < 0 || z > top) {
      return NotExportable(qt.name, absl::StrCat("zero point ", z, " is not an integer in 0..",
                                                 top, " (quantize with --rtn-variant minMax)"));
    }
    if (z == 0 && format == GptqFormat::kV1) {
      return NotExportable(qt.name, "a zero point is 0, which GPTQ v1 stores as −1: use "
                                    "--format gptq_v2");
    }
    const float s = qt.scale[i];
    if (!(s >= kMinNormalF16 && s <= kMaxF16)) {
      return NotExportable(qt.name, absl::StrCat("scale ", s, " is outside F16's normal range"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<GptqTensor> ToGptq(const QuantizedTensor& qt, int bits, GptqFormat format) {
  const float zero_offset = format == GptqFormat::kV1 ? 1.0f : 0.0f;
  const int64_t rows = qt.rows, cols = qt.cols, groups = qt.NumGroups();
  GptqTensor t;
  // Codes transposed to [in][out] order: column c of the weight is the
  // input feature whose codes go into one qweight column's words.
  std::vector<uint8_t> by_output(static_cast<size_t>(rows * cols));
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t width = qt.GroupWidth(g);
    std::vector<uint8_t> codes(static_cast<size_t>(rows * width));
    RETURN_IF_ERROR(UnpackGroupCodes(qt, g, codes));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < width; ++c) {
        by_output[r * cols + g * qt.group_size + c] = codes[r * width + c];
      }
    }
  }
  const int64_t words_in = cols * bits / 32, words_out = rows * bits / 32;
  t.qweight.resize(static_cast<size_t>(words_in * rows));
  std::vector<int32_t> column(static_cast<size_t>(words_in));
  for (int64_t r = 0; r < rows; ++r) {
    RETURN_IF_ERROR(PackWords(std::span(by_output).subspan(r * cols, cols), bits, column));
    for (int64_t w = 0; w < words_in; ++w) t.qweight[w * rows + r] = column[w];
  }
  t.qzeros.resize(static_cast<size_t>(groups * words_out));
  t.scales.resize(static_cast<size_t>(groups * rows));
  std::vector<uint8_t> zeros(static_cast<size_t>(rows));
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t r = 0; r < rows; ++r) {
      zeros[r] = static_cast<uint8_t>(qt.zero[g * rows + r] - zero_offset);
      t.scales[g * rows + r] = FloatToHalf(qt.scale[g * rows + r]);
    }
    RETURN_IF_ERROR(
        PackWords(zeros, bits, std::span(t.qzeros).subspan(g * words_out, words_out)));
  }
  t.g_idx.resize(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) t.g_idx[c] = static_cast<int32_t>(c / qt.group_size);
  return t;
}

template <typename T>
std::span<const std::byte> Bytes(const std::vector<T>& v) {
  return std::as_bytes(std::span(v));
}

absl::StatusOr<std::string> GptqConfigJson(const fs::path& packed_dir, int bits,
                                           int64_t group_size, GptqFormat format) {
  ASSIGN_OR_RETURN(const std::string text, ReadFileToString(packed_dir / "config.json"));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::DataLossError("config.json: not a JSON object");
  j["quantization_config"] = {{"quant_method", "gptq"},
                              {"checkpoint_format", format == GptqFormat::kV1 ? "gptq" : "gptq_v2"},
                              {"bits", bits},           {"group_size", group_size},
                              {"desc_act", false},      {"sym", false},
                              {"true_sequential", true}};
  return j.dump(2) + "\n";
}

}  // namespace

bool IsGptqBits(int bits) { return bits == 2 || bits == 3 || bits == 4 || bits == 8; }

absl::Status ExportGptq(const PackedModel& model, const fs::path& out_dir, GptqFormat format) {
  const QuantizationConfig& qc = model.manifest().config;
  const int bits = static_cast<int>(qc.bits);
  if (qc.bits != bits || !IsGptqBits(bits)) {
    return absl::FailedPreconditionError(
        absl::StrCat("GPTQ holds 2, 3, 4 or 8 bits per weight; this model has ", qc.bits));
  }
  std::vector<GptqTensor> converted;  // owns the bytes `tensors` points into
  std::vector<TensorToWrite> tensors;
  for (const ManifestTensor& t : model.manifest().tensors) {
    if (!t.quantized) {
      ASSIGN_OR_RETURN(TensorView view, model.safetensors().Get(t.name));
      tensors.push_back({t.name, view.dtype, view.shape, view.data});
      continue;
    }
    if (!t.name.ends_with(kWeightSuffix)) return NotExportable(t.name, "not a '.weight'");
    ASSIGN_OR_RETURN(const QuantizedTensor qt, model.LoadQuantized(t.name));
    RETURN_IF_ERROR(CheckTensor(qt, bits, qc.group_size, format));
    ASSIGN_OR_RETURN(GptqTensor g, ToGptq(qt, bits, format));
    converted.push_back(std::move(g));
  }
  // Second pass: `converted` no longer grows, so spans into it stay valid.
  size_t next = 0;
  for (const ManifestTensor& t : model.manifest().tensors) {
    if (!t.quantized) continue;
    const GptqTensor& g = converted[next++];
    const std::string p = t.name.substr(0, t.name.size() - kWeightSuffix.size());
    const int64_t rows = t.shape[0], cols = t.shape[1];
    const int64_t groups = static_cast<int64_t>(g.scales.size()) / rows;
    tensors.push_back({p + ".qweight", DType::kI32, {cols * bits / 32, rows}, Bytes(g.qweight)});
    tensors.push_back({p + ".qzeros", DType::kI32, {groups, rows * bits / 32}, Bytes(g.qzeros)});
    tensors.push_back({p + ".scales", DType::kF16, {groups, rows}, Bytes(g.scales)});
    tensors.push_back({p + ".g_idx", DType::kI32, {cols}, Bytes(g.g_idx)});
  }
  ASSIGN_OR_RETURN(const std::string config,
                   GptqConfigJson(model.directory(), bits, qc.group_size, format));
  return WriteDirectoryAtomically(out_dir, [&](const fs::path& tmp) -> absl::Status {
    RETURN_IF_ERROR(WriteSafetensorsModel(tmp, tensors, model.safetensors().metadata()));
    RETURN_IF_ERROR(AtomicWriteString(tmp / "config.json", config));
    RETURN_IF_ERROR(CopyCompanionFiles(model.directory(), tmp));
    return SafetensorsModel::Open(tmp).status();
  });
}

}  // namespace glvq
