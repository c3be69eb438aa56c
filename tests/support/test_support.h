// Helpers shared by the test suites: scratch directories, fixture paths,
// running the built binaries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/packed/quantized_tensor.h"
#include "common/safetensors/writer.h"
#include "common/tensor/dtype.h"

namespace glvq::testing {

// A fresh directory under the system temp dir, removed (recursively) when the
// object is destroyed.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// $GLVQ_FIXTURES_DIR, else the build's GLVQ_FIXTURES_DIR (../shared/fixtures
// beside the source tree). Tests that need a fixture GTEST_SKIP() if absent.
std::filesystem::path FixturesDir();
// The stories260K model directory.
std::filesystem::path Stories260KDir();
// $GLVQ_BIN_DIR, else the build's bin directory.
std::filesystem::path BinDir();

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs `command` through /bin/sh, capturing stdout and stderr.
CommandResult RunCommand(const std::string& command);

// Writes `bytes` to `path` (plain, non-atomic; for building test inputs).
void WriteFile(const std::filesystem::path& path, const std::string& bytes);

// n i.i.d. N(0, 1) values from `seed` (common/base/random.h, so the same
// on every machine).
std::vector<float> GaussianValues(int64_t n, uint64_t seed);

// A rows × cols LLM-like weight (common/synthetic/example_model.h) with the
// default statistics and `seed`.
std::vector<float> LlmLikeValues(int64_t rows, int64_t cols, uint64_t seed);

// H = X Xᵀ / N (n × n, row-major = column-major: symmetric) for N = 3n
// AR(1)-correlated activations with two outlier channels (3 and n / 2, n > 3).
std::vector<double> CorrelatedHessian(int64_t n, uint64_t seed);

// A tensor that owns its bytes, for building safetensors test inputs.
struct OwnedTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<std::byte> data;

  TensorToWrite ToWrite() const { return {name, dtype, shape, data}; }
};

// Views of qt's component tensors (ComponentTensors), keyed by component
// name ("codes", "bits", ...): what QuantizedTensorFromComponents reads.
// The views borrow qt's arrays.
std::map<std::string, TensorView, std::less<>> ComponentViews(const QuantizedTensor& qt);

}  // namespace glvq::testing
