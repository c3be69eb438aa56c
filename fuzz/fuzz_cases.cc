#include "fuzz/fuzz_cases.h"

#include <cstdio>
#include <vector>

#include "common/jobspec/quantizer_spec.h"

namespace glvq::fuzz {

quant::QuantizerConfig SmallConfig(quant::Method method) {
  quant::QuantizerConfig config;
  config.method = method;
  config.bits = 2;
  config.dim = method == quant::Method::kRtn ? 1 : 8;
  config.group_size = 32;
  config.seed = 7;
  config.glvq.max_iters = 2;
  config.trellis.window = 8;
  return config;
}

v1::Task SmallTask(quant::Method method) {
  v1::Task task;
  task.set_id("t-000000-0000000000000000");
  task.set_job_id("fuzz");
  task.set_tensor("w");
  v1::TensorLocation* source = task.mutable_source();
  source->set_dtype("F32");
  source->add_shape(8);
  source->add_shape(64);
  source->set_length(8 * 64 * 4);
  task.mutable_groups()->set_first(0);
  task.mutable_groups()->set_count(2);
  task.set_total_groups(2);
  task.set_weights(8 * 64);
  *task.mutable_quantizer() = jobspec::FromQuantizerConfig(SmallConfig(method));
  return task;
}

std::string JoinResult(uint8_t method_byte, std::string_view header, std::string_view payload) {
  std::string out(1, static_cast<char>(method_byte));
  const auto n = static_cast<uint32_t>(header.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out.append(header);
  out.append(payload);
  return out;
}

void RequireDecodableOrRefused(const QuantizedTensor& qt) {
  (void)ComputeAccounting(qt);
  std::vector<float> out(static_cast<size_t>(qt.NumWeights()));
  const absl::Status s = DequantizeRef(qt, out);
  if (!s.ok() && (s.code() != absl::StatusCode::kInvalidArgument || s.message().empty())) {
    std::fprintf(stderr, "accepted tensor fails to decode: %s\n", s.ToString().c_str());
    __builtin_trap();
  }
}

}  // namespace glvq::fuzz
