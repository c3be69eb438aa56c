// libFuzzer target for ParseSafetensorsHeader. Beyond "no crash, no sanitizer
// report", it checks the header's promise: whatever passes validation can be
// indexed without further checks.
#include <cstddef>
#include <cstdint>
#include <span>

#include "common/safetensors/header.h"
#include "common/tensor/tensor_view.h"

namespace {

void CheckAcceptedHeader(const glvq::SafetensorsHeader& header, size_t file_size) {
  if (header.data_offset + header.data_size != file_size) __builtin_trap();
  uint64_t covered = 0;
  for (const glvq::TensorEntry& t : header.tensors) {
    const glvq::TensorView view{t.dtype, t.shape, {}};
    const auto bytes = static_cast<uint64_t>(view.NumElements()) * glvq::DTypeSize(t.dtype);
    if (t.begin > t.end || t.end > header.data_size || t.end - t.begin != bytes) __builtin_trap();
    covered += bytes;
  }
  if (covered != header.data_size) __builtin_trap();  // tiled: no holes, no overlaps
  for (size_t i = 1; i < header.tensors.size(); ++i) {
    if (!(header.tensors[i - 1].name < header.tensors[i].name)) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = std::as_bytes(std::span(data, size));
  const auto header = glvq::ParseSafetensorsHeader(file);
  if (header.ok()) CheckAcceptedHeader(*header, size);
  return 0;
}
