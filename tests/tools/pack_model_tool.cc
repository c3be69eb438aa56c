// Test helper: writes a packed model of a source model with the engine
// (for the Llama interop check and for measurements, until `glvq quantize`
// exists).
//
//   pack_model_tool MODEL_DIR OUT_DIR [glvq|rtn|gptq [BITS [HESSIANS_DIR]]]
//     glvq: 2 bits, d = 8, groups of 32 (few iterations, for speed)
//     rtn, gptq: FastTestConfig() (6 bits, groups of 32) with that method
//     HESSIANS_DIR: a `glvq calibrate` output (else H = I)
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>

#include "model/quantize_model.h"
#include "tests/support/fast_quantize.h"

int main(int argc, char** argv) {
  if (argc < 3 || argc > 6) {
    std::cerr << "usage: pack_model_tool MODEL_DIR OUT_DIR [glvq|rtn|gptq [BITS [HESSIANS_DIR]]]\n";
    return 2;
  }
  const std::string method = argc >= 4 ? argv[3] : "glvq";
  glvq::quant::QuantizerConfig config = glvq::testing::FastTestConfig();
  if (method == "glvq") {
    config.method = glvq::quant::Method::kGlvq;
    config.bits = 2;
    config.dim = 8;
    config.glvq.max_iters = 3;
    config.glvq.refine_steps = 2;
  } else if (method == "gptq") {
    config.method = glvq::quant::Method::kGptq;
  } else if (method != "rtn") {
    std::cerr << "pack_model_tool: unknown method " << method << "\n";
    return 2;
  }
  if (argc >= 5) config.bits = std::atof(argv[4]);
  std::optional<glvq::SafetensorsModel> hessians;
  if (argc == 6) {
    auto h = glvq::SafetensorsModel::Open(argv[5]);
    if (!h.ok()) {
      std::cerr << "pack_model_tool: " << h.status() << "\n";
      return 1;
    }
    hessians.emplace(std::move(*h));
  }
  const absl::Status s =
      glvq::model::QuantizeModel(argv[1], argv[2], config, hessians ? &*hessians : nullptr);
  if (!s.ok()) {
    std::cerr << "pack_model_tool: " << s << "\n";
    return 1;
  }
  return 0;
}
