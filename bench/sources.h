// Weight sources for the quality and speed benchmarks: synthetic matrices
// with known statistics and the real layers of the shared fixture.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace glvq::bench {

// One weight matrix to quantize, with the Hessian of its inputs if the
// source has one (empty = identity).
struct Layer {
  std::string source;   // "gaussian", "student_t", "llm_like", "stories260k"
  std::string name;     // tensor name
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> w;        // rows × cols, row-major
  std::vector<double> hessian; // cols × cols or empty
};

inline constexpr const char* kSourceNames[] = {"gaussian", "student_t", "llm_like",
                                               "stories260k"};

// The layers of `source`. Synthetic sources are generated from fixed seeds;
// "stories260k" reads every 2-D projection of the fixture in `fixtures_dir`.
absl::StatusOr<std::vector<Layer>> LoadSource(const std::string& source,
                                              const std::filesystem::path& fixtures_dir);

// Hessian H = XᵀX/N of synthetic activations: AR(1)-correlated channels
// (ρ = 0.6), log-normal channel scales, and a few outlier channels at
// 10–100×, as seen in LLM layer inputs.
std::vector<double> SyntheticHessian(int64_t n, uint64_t seed);

}  // namespace glvq::bench
