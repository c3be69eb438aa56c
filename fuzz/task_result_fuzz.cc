// libFuzzer target for what a worker uploads: a TaskResultHeader proto and
// its payload, checked (CheckPayload) and decoded against a fixed task
// (DecodeResult), as the coordinator's WorkerService does. The promise under
// test: a result that passes both decodes with the reference decoder,
// or is refused by it with INVALID_ARGUMENT (values overflowing F32).
//
// Input: one method byte (low bits pick the task's method; bit 7 asks the
// harness to fix up every CRC32C so that the fuzzer reaches DecodeResult
// without forging checksums), then fuzz_cases.h's JoinResult layout.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "common/base/crc32c.h"
#include "common/packed/quantized_tensor.h"
#include "common/rpc/result_codec.h"
#include "fuzz/fuzz_cases.h"

namespace {

uint32_t Crc(std::string_view bytes) {
  return glvq::Crc32c(std::as_bytes(std::span(bytes.data(), bytes.size())));
}

// Sets the CRCs the header claims to those of the bytes it points at, where
// it points inside the payload.
void FixChecksums(glvq::v1::TaskResultHeader* header, std::string_view payload) {
  header->set_payload_crc32c(Crc(payload));
  for (auto& c : *header->mutable_components()) {
    if (c.offset() <= payload.size() && c.length() <= payload.size() - c.offset()) {
      c.set_crc32c(Crc(payload.substr(c.offset(), c.length())));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 5) return 0;
  const size_t which = (data[0] & 0x7f) % glvq::fuzz::kMethods.size();
  const uint32_t n = data[1] | (data[2] << 8) | (data[3] << 16) | (uint32_t{data[4]} << 24);
  if (n > size - 5) return 0;
  glvq::v1::TaskResultHeader header;
  if (!header.ParseFromArray(data + 5, static_cast<int>(n))) return 0;
  const std::string_view payload(reinterpret_cast<const char*>(data) + 5 + n, size - 5 - n);
  if (data[0] & 0x80) FixChecksums(&header, payload);

  if (!glvq::rpc::CheckPayload(header, payload).ok()) return 0;
  static const std::vector<glvq::v1::Task> tasks = [] {
    std::vector<glvq::v1::Task> all;
    for (auto m : glvq::fuzz::kMethods) all.push_back(glvq::fuzz::SmallTask(m));
    return all;
  }();
  const glvq::v1::Task& task = tasks[which];
  auto qt = glvq::rpc::DecodeResult(task, header, payload);
  if (!qt.ok()) return 0;
  glvq::fuzz::RequireDecodableOrRefused(*qt);
  return 0;
}
