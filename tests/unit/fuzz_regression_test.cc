// Inputs the fuzz targets (fuzz/, scripts/fuzz.sh) found, each with the
// behaviour it must now have. A regression shows up as a failure or as the
// test's CTest timeout (the first finding hung forever).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "common/jobspec/job_spec.h"
#include "common/packed/quantized_tensor.h"
#include "tests/support/test_support.h"
#include "worker/engine/quantizer.h"

namespace glvq {
namespace {
using ::testing::HasSubstr;

// job_spec_fuzz, 2026-11-23: yaml-cpp 0.7's LoadAll emits empty documents
// forever when the first token is a stray ',', growing memory until killed.
TEST(FuzzRegression, StrayCommaDocumentIsRejectedNotLooping) {
  for (const std::string text : {"#\n,", ",", " ,", "a: 1\n---\n,"}) {
    auto parsed = jobspec::ParseJobYaml(text, "job.yaml", "/");
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("job.yaml")) << text;
  }
}

TEST(FuzzRegression, SecondDocumentIsNamedWithItsPosition) {
  auto parsed = jobspec::ParseJobYaml("apiVersion: glvq.io/v1\n---\nkind: x\n", "job.yaml", "/");
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(std::string(parsed.status().message()),
              HasSubstr("job.yaml:2:1: a job file holds exactly one YAML document"));
}

// task_result_fuzz and packed_format_fuzz, 2026-11-23: a tensor whose every
// field is valid (finite scales) can still decode to ±inf when a huge scale
// meets an extreme code. Validation does not decode; the decoder must
// refuse such a tensor with an error, never hand out infinities.
TEST(FuzzRegression, FiniteScalesThatOverflowAreRefusedByTheDecoder) {
  quant::QuantizerConfig config;
  config.method = quant::Method::kRtn;
  config.bits = 2;
  config.dim = 1;
  config.group_size = 32;
  auto quantizer = engine::MakeQuantizer(config);
  ASSERT_TRUE(quantizer.ok());
  const std::vector<float> w = testing::GaussianValues(8 * 64, 3);
  auto result = (*quantizer)->Quantize("w", {w.data(), 8, 64}, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  QuantizedTensor qt = result->tensor;
  for (float& s : qt.scale) s = 3e38f;
  ASSERT_TRUE(ValidateQuantizedTensor(qt).ok());
  std::vector<float> out(8 * 64);
  const absl::Status s = DequantizeRef(qt, out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("decodes to"));
}

}  // namespace
}  // namespace glvq
