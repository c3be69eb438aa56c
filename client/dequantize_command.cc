// `glvq dequantize --packed DIR --out DIR [--dtype F32|F16|BF16]`: a plain
// safetensors model from a packed one (reference decoder), loadable by any
// Llama implementation.
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "client/commands.h"
#include "common/base/one_line.h"
#include "common/base/status_macros.h"
#include "common/packed/packed_model.h"
#include "common/tensor/dtype.h"

namespace glvq::cli {
namespace {

struct DequantizeArgs {
  std::string packed;
  std::string out;
  std::string dtype;  // empty: each weight's source dtype
};

absl::Status RunDequantize(const DequantizeArgs& a) {
  ASSIGN_OR_RETURN(const PackedModel packed, PackedModel::Open(a.packed));
  std::optional<DType> dtype;
  if (!a.dtype.empty()) dtype = ParseDType(a.dtype);
  return WriteDequantizedModel(packed, a.out, dtype);
}

}  // namespace

void RegisterDequantizeCommand(CLI::App& app, int* exit_code) {
  auto* cmd =
      app.add_subcommand("dequantize", "Decode a glvq packed model into a plain safetensors model");
  auto args = std::make_shared<DequantizeArgs>();
  cmd->add_option("--packed", args->packed, "Packed model directory")->required();
  cmd->add_option("--out", args->out, "Directory to create")->required();
  cmd->add_option("--dtype", args->dtype,
                  "dtype of the decoded weights (default: each weight's source dtype)")
      ->check(CLI::IsMember({"F32", "F16", "BF16"}));
  cmd->callback([args, exit_code] {
    if (absl::Status s = RunDequantize(*args); !s.ok()) {
      std::cerr << "glvq dequantize: " << ErrorLine(s) << "\n";
      *exit_code = kExitBadInput;
      return;
    }
    std::cout << "wrote dequantized model to " << args->out << "\n";
  });
}

}  // namespace glvq::cli
