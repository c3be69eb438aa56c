// libFuzzer target for the packed-format readers (docs/format.md): the
// manifest parser and the rebuilding of a quantized tensor from component
// tensors, which PackedModel::Open and the coordinator's assembler rely on.
//
// Input: a mode byte, then
//   mode even: glvq_manifest.json text. Promise: an accepted manifest
//     serializes and parses back to itself.
//   mode odd: 3 shape bytes (rows, cols, group and dim choice), then a
//     safetensors file whose tensors are the components ("codes", "bits",
//     ...) of a tensor "w" of the method picked by the mode (fuzz_cases.h's
//     kMethods, glvq rtn e8p pvq). Promise: an accepted
//     tensor has an accounting and decodes with the reference decoder, or
//     is refused by it with INVALID_ARGUMENT (values overflowing F32).
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/packed/packed_model.h"
#include "common/packed/quantized_tensor.h"
#include "common/safetensors/header.h"
#include "fuzz/fuzz_cases.h"

namespace {

void FuzzManifest(std::string_view text) {
  auto manifest = glvq::ParseManifest(text);
  if (!manifest.ok()) return;
  auto again = glvq::ParseManifest(glvq::SerializeManifest(*manifest));
  if (!again.ok() || !(*again == *manifest)) __builtin_trap();
}

// pvq's D by the dim choice: 3 divides no group size, so every group has a
// short vector (the format allows it; the reference quantizer never writes
// it), 4 and 8 are what the quantizer writes.
constexpr int64_t kPvqDims[] = {3, 4, 8};
// trellis's window L by the dim choice; choice 2 (the seeds' shape byte 8)
// is SmallConfig's window.
constexpr int64_t kTrellisWindows[] = {4, 16, 8};

glvq::QuantizedTensor Meta(uint8_t mode, const uint8_t* shape) {
  using glvq::quant::Method;
  const Method method = glvq::fuzz::kMethods[(mode >> 1) % glvq::fuzz::kMethods.size()];
  const int choice = shape[2] / 3 % 3;
  glvq::QuantizedTensor meta;
  meta.name = "w";
  meta.method = glvq::quant::MethodName(method);
  meta.rows = 1 + shape[0] % 16;
  meta.cols = 1 + shape[1] % 96;
  meta.group_size = 8 << (shape[2] % 3);  // 8, 16, 32
  meta.dim = method == Method::kRtn       ? 1
             : method == Method::kE8p     ? 8
             : method == Method::kPvq     ? kPvqDims[choice]
             : method == Method::kTrellis ? kTrellisWindows[choice]
                                          : 2 << choice;  // glvq: 2, 4, 8
  return meta;
}

void FuzzComponents(uint8_t mode, std::span<const uint8_t> input) {
  if (input.size() < 3) return;
  const glvq::QuantizedTensor meta = Meta(mode, input.data());
  const auto file = std::as_bytes(input.subspan(3));
  auto header = glvq::ParseSafetensorsHeader(file);
  if (!header.ok()) return;
  std::map<std::string, glvq::TensorView, std::less<>> components;
  const auto data = file.subspan(header->data_offset);
  for (const glvq::TensorEntry& t : header->tensors) {
    components[t.name] = {t.dtype, t.shape, data.subspan(t.begin, t.end - t.begin)};
  }
  auto qt = glvq::QuantizedTensorFromComponents(meta, components);
  if (!qt.ok()) return;
  glvq::fuzz::RequireDecodableOrRefused(*qt);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  if (data[0] % 2 == 0) {
    FuzzManifest(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  } else {
    FuzzComponents(data[0], std::span(data + 1, size - 1));
  }
  return 0;
}
