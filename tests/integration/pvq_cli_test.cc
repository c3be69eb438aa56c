// PVQ as a user runs it: `glvq quantize --method pvq` on the stories260K
// fixture (embedded coordinator and workers), the packed model it writes,
// and `glvq eval` on it.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "common/packed/packed_model.h"
#include "nlohmann/json.hpp"
#include "tests/support/service_harness.h"
#include "tests/support/test_support.h"

namespace glvq {
namespace {

namespace fs = std::filesystem;
using testing::RunCommand;

std::string Glvq() { return (testing::BinDir() / "glvq").string(); }

class PvqCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(testing::Stories260KDir() / "model.safetensors")) {
      GTEST_SKIP() << "fixture stories260K not found";
    }
  }

  // Quantizes the fixture with PVQ, D = 32, at 2.5 bits: the 172-column
  // matrices end in a short vector of 12 columns.
  fs::path Quantize(const std::string& name, int workers) {
    const fs::path out = dir_ / name;
    const auto r = RunCommand(Glvq() + " quantize --model " + testing::Stories260KDir().string() +
                              " --out " + out.string() + " --method pvq --bits 2.5 --dim 32" +
                              " --group-size 64 --workers " + std::to_string(workers));
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("total:"), std::string::npos) << r.out;  // the quality report
    return out;
  }

  testing::ScratchDir dir_;
};

TEST_F(PvqCli, QuantizeWritesAVerifiedPvqModelWhateverTheWorkers) {
  const fs::path out = Quantize("two", 2);
  auto model = PackedModel::Open(out);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->manifest().config.method, "pvq");
  int quantized = 0;
  for (const ManifestTensor& t : model->manifest().tensors) {
    if (!t.quantized) continue;
    ++quantized;
    EXPECT_EQ(t.method, "pvq") << t.name;
    EXPECT_EQ(t.dim, 32) << t.name;
    EXPECT_LE(t.accounting.PayloadPerWeight(), 2.5) << t.name;
    EXPECT_TRUE(t.components.contains("rht_seed")) << t.name;
    auto w = model->Dequantize(t.name);
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE(t.quality.has_value());
    EXPECT_LT(t.quality->nmse, 0.1) << t.name;
  }
  EXPECT_GT(quantized, 0);
  EXPECT_EQ(testing::ReadTree(Quantize("one", 1)), testing::ReadTree(out));

  const std::string tokens = (testing::Stories260KDir() / "eval_tokens_seed1234.txt").string();
  const auto eval = RunCommand(Glvq() + " eval --model " + testing::Stories260KDir().string() +
                               " --packed " + out.string() + " --tokens " + tokens + " --json");
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  const auto j = nlohmann::json::parse(eval.out);
  EXPECT_GT(j["kl"].get<double>(), 0.0);
  EXPECT_LT(j["kl"].get<double>(), 5.0);
}

TEST_F(PvqCli, ARateBeyondThePyramidBoundsIsRejectedBeforeAnyWork) {
  const auto r = RunCommand(Glvq() + " quantize --model " + testing::Stories260KDir().string() +
                            " --out " + (dir_ / "bad").string() +
                            " --method pvq --bits 5 --dim 128 --group-size 128");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("pvq rate beyond its bounds"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "bad"));
}

}  // namespace
}  // namespace glvq
