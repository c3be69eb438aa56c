// Every method's packed format (common/packed/tensor_format.h) against its
// contract, on tensors its own quantizer produced: the component tensors
// round-trip, the arrays it does not store are refused, and the reference
// decoder reproduces what the quantizer reported.
#include <gtest/gtest.h>
#include <gmock/gmock.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "common/packed/quantized_tensor.h"
#include "common/packed/tensor_format.h"
#include "common/quant/config.h"
#include "tests/support/test_support.h"
#include "worker/engine/quantizer.h"

namespace glvq {
namespace {

using ::testing::HasSubstr;

// 24 × 80: two groups of 64 and 16 columns (trellis: 32, 32, 16), so every
// method has a ragged last group; 3 bits where a method has them (pvq at a
// fractional-free rate; e8p is 2 bits by definition).
quant::QuantizeResult Quantize(quant::Method method) {
  quant::QuantizerConfig c;
  c.method = method;
  c.bits = method == quant::Method::kE8p ? 2 : 3;
  c.dim = method == quant::Method::kRtn || method == quant::Method::kGptq ? 1 : 8;
  c.group_size = method == quant::Method::kTrellis ? 32 : 64;
  c.seed = 7;
  c.threads = 1;
  const std::vector<float> w = testing::GaussianValues(24 * 80, 11);
  auto q = engine::MakeQuantizer(c);
  EXPECT_TRUE(q.ok()) << q.status();
  auto r = (*q)->Quantize("layers.0.w", {w.data(), 24, 80}, nullptr);
  EXPECT_TRUE(r.ok()) << r.status();
  return *std::move(r);
}

TEST(TensorFormat, EveryPackedMethodHasOneAndNothingElseDoes) {
  for (const std::string_view m :
       {kMethodGlvq, kMethodRtn, kMethodE8p, kMethodPvq, kMethodTrellis}) {
    EXPECT_NE(FindTensorFormat(m), nullptr) << m;
    const std::vector<std::string> names = ComponentNames(m);
    EXPECT_THAT(names, ::testing::Contains("codes")) << m;
    EXPECT_THAT(names, ::testing::Contains("offsets")) << m;
    EXPECT_TRUE(std::is_sorted(names.begin(), names.end())) << m;
  }
  EXPECT_EQ(FindTensorFormat("gptq"), nullptr);  // gptq writes rtn tensors
  EXPECT_EQ(FindTensorFormat("GLVQ"), nullptr);
  EXPECT_TRUE(ComponentNames("lut").empty());
}

TEST(TensorFormat, QuantizerOutputKeepsTheFormatsContract) {
  for (const quant::Method method : quant::kAllMethods) {
    SCOPED_TRACE(quant::MethodName(method));
    const quant::QuantizeResult r = Quantize(method);
    const QuantizedTensor& qt = r.tensor;
    ASSERT_EQ(qt.method, quant::FormatMethod(method));
    ASSERT_TRUE(ValidateQuantizedTensor(qt).ok()) << ValidateQuantizedTensor(qt);

    // The reference decoder is the quantizer's own reconstruction.
    std::vector<float> decoded(static_cast<size_t>(qt.rows * qt.cols));
    ASSERT_TRUE(DequantizeRef(qt, decoded).ok());
    EXPECT_EQ(decoded, r.dequantized);

    // Components out and back in: the same tensor.
    std::map<std::string, TensorView, std::less<>> views;
    const std::string prefix = qt.name + std::string(kComponentInfix);
    for (const TensorToWrite& t : ComponentTensors(qt)) {
      views[t.name.substr(prefix.size())] = TensorView{t.dtype, t.shape, t.data};
    }
    std::vector<std::string> stored;
    for (const auto& [name, view] : views) stored.push_back(name);
    EXPECT_EQ(stored, ComponentNames(qt.method, !qt.rht_seed.empty(), !qt.row_scale.empty()));
    auto back = QuantizedTensorFromComponents(qt, views);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, qt);

    // An array the method does not store is refused, by name.
    for (const char* field : {"generators", "mu", "zero", "norms", "row_scale", "pulses"}) {
      if (std::find(stored.begin(), stored.end(), field) != stored.end()) continue;
      // glvq's row gains are optional: one entry makes them present (and short).
      if (qt.method == kMethodGlvq && std::string_view(field) == "row_scale") continue;
      QuantizedTensor bad = qt;
      const std::string f = field;
      if (f == "generators") bad.generators.push_back(1);
      if (f == "mu") bad.mu.push_back(0);
      if (f == "zero") bad.zero.push_back(0);
      if (f == "norms") bad.norms.push_back(1);
      if (f == "row_scale") bad.row_scale.push_back(1);
      if (f == "pulses") bad.pulses.push_back(1);
      const absl::Status s = ValidateQuantizedTensor(bad);
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << field;
      EXPECT_THAT(std::string(s.message()), HasSubstr(f + " has 1 entries, expected 0"));
    }

    // Accounting: payload from the format, total from every stored byte.
    uint64_t bytes = 0;
    for (const TensorToWrite& t : ComponentTensors(qt)) bytes += t.data.size();
    const BitsAccounting acc = ComputeAccounting(qt);
    EXPECT_EQ(acc.total_bits, 8 * bytes);
    EXPECT_GT(acc.payload_bits, 0u);
    EXPECT_LE(acc.payload_bits, acc.total_bits);
  }
}

}  // namespace
}  // namespace glvq
