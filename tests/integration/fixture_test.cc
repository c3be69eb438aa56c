// The real stories260K checkpoint loads through the safetensors reader.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/safetensors/reader.h"
#include "gtest/gtest.h"
#include "tests/support/test_support.h"

namespace glvq {
namespace {

class Stories260KFixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(testing::Stories260KDir() / "model.safetensors")) {
      GTEST_SKIP() << "fixture missing: " << testing::Stories260KDir();
    }
    auto model = SafetensorsModel::Open(testing::Stories260KDir());
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::make_unique<SafetensorsModel>(*std::move(model));
  }

  std::unique_ptr<SafetensorsModel> model_;
};

TEST_F(Stories260KFixtureTest, HasTheLlamaTensors) {
  EXPECT_EQ(model_->tensor_names().size(), 47u);
  EXPECT_EQ(model_->files().size(), 1u);
  const std::vector<std::pair<std::string, std::vector<int64_t>>> expected = {
      {"model.layers.0.self_attn.q_proj.weight", {64, 64}},
      {"model.layers.0.self_attn.k_proj.weight", {32, 64}},
      {"model.layers.0.mlp.gate_proj.weight", {172, 64}},
      {"model.layers.0.mlp.down_proj.weight", {64, 172}},
      {"model.embed_tokens.weight", {512, 64}},
  };
  for (const auto& [name, shape] : expected) {
    const TensorEntry* entry = model_->Find(name);
    ASSERT_NE(entry, nullptr) << name;
    EXPECT_EQ(entry->shape, shape) << name;
  }
}

TEST_F(Stories260KFixtureTest, AllTensorsAreFiniteF32) {
  for (const std::string& name : model_->tensor_names()) {
    const auto view = model_->Get(name);
    ASSERT_TRUE(view.ok()) << view.status();
    ASSERT_EQ(view->dtype, DType::kF32) << name;
    ASSERT_EQ(view->data.size(), static_cast<size_t>(view->NumElements()) * 4) << name;
    for (size_t i = 0; i < view->data.size(); i += 4) {
      float value;
      std::memcpy(&value, view->data.data() + i, 4);
      ASSERT_TRUE(std::isfinite(value)) << name << " element " << i / 4;
    }
  }
}

}  // namespace
}  // namespace glvq
