// `glvq validate` and `glvq plan` end to end: the shipped example job on the
// example model, the fixture, JSON output, exit codes, one-line errors with
// file:line:col and status code, and nothing written by either command.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <algorithm>
#include <set>
#include <string>

#include "absl/strings/str_replace.h"
#include "common/base/file_util.h"
#include "nlohmann/json.hpp"
#include "tests/support/test_support.h"
#include "tests/support/tiny_model.h"

namespace glvq {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::RunCommand;
using testing::ScratchDir;
using ::testing::StartsWith;

std::string Glvq() { return (testing::BinDir() / "glvq").string(); }

std::set<fs::path> Listing(const fs::path& dir) {
  std::set<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) files.insert(e.path());
  return files;
}

constexpr char kJob[] = R"(apiVersion: glvq.io/v1
kind: QuantizationJob
metadata:
  name: tiny
spec:
  model:
    path: model
  quantizer:
    method: glvq
    bits: 2
    dim: 4
    groupSize: 64
  output:
    path: out/tiny
)";

// A scratch directory with the tiny model and job.yaml (kJob edited).
class JobCli : public ::testing::Test {
 protected:
  void SetUp() override { testing::WriteTinyModel(dir_ / "model"); }

  // Writes job.yaml and runs `glvq ARGS job.yaml` from the scratch dir.
  testing::CommandResult Run(const std::string& args, const std::string& from = "",
                             const std::string& to = "") {
    std::string text = kJob;
    if (!from.empty()) {
      EXPECT_NE(text.find(from), std::string::npos) << from;
      text = absl::StrReplaceAll(text, {{from, to}});
    }
    testing::WriteFile(dir_ / "job.yaml", text);
    const std::set<fs::path> before = Listing(dir_.path());
    auto r =
        RunCommand("cd '" + dir_.path().string() + "' && " + Glvq() + " " + args + " job.yaml");
    EXPECT_EQ(Listing(dir_.path()), before) << "the command wrote something";
    return r;
  }

  ScratchDir dir_;
};

TEST_F(JobCli, ValidatePrintsCounts) {
  auto r = Run("validate");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "job.yaml: valid (3 tensors to quantize, 3 passed through)\n");
  r = Run("validate --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["valid"], true);
  EXPECT_EQ(j["tensors_quantized"], 3);
  EXPECT_EQ(j["tensors_passed_through"], 3);
  EXPECT_EQ(j["job"]["spec"]["quantizer"]["groupSize"], 64);
  EXPECT_EQ(j["job"]["spec"]["model"]["path"], (dir_ / "model").string());
}

struct BadCase {
  const char* name;
  const char* from;
  const char* to;
  const char* code;
  const char* message;  // expected start of stderr
};

TEST_F(JobCli, BadSpecsExitOneWithFileLineColumnAndCode) {
  const BadCase cases[] = {
      {"unknown key", "    groupSize: 64\n", "    groupSize: 64\n    foo: 1\n", "INVALID_ARGUMENT",
       "job.yaml:13:5: unknown key 'foo' in spec.quantizer (known: method, bits,"},
      {"bits 9", "bits: 2", "bits: 9", "INVALID_ARGUMENT",
       "job.yaml:10:11: spec.quantizer.bits: bits must be within 1..8, got 9"},
      {"unknown method", "method: glvq", "method: awq", "INVALID_ARGUMENT",
       "job.yaml:9:13: spec.quantizer.method: unknown value 'awq' (known: glvq, rtn, gptq, e8p, "
       "pvq, trellis)"},
      {"missing model", "path: model", "path: missing", "FAILED_PRECONDITION",
       "job.yaml:7:11: spec.model.path: "},
      {"output inside the model", "path: out/tiny", "path: model/out", "INVALID_ARGUMENT",
       "job.yaml:14:11: spec.output.path: "},
      {"output exists", "path: out/tiny", "path: model", "INVALID_ARGUMENT",
       "job.yaml:14:11: spec.output.path: "},
      {"output not writable", "path: out/tiny", "path: job.yaml/out", "FAILED_PRECONDITION",
       "job.yaml:14:11: spec.output.path: cannot create "},
      {"output already there", "path: out/tiny", "path: .", "FAILED_PRECONDITION",
       "job.yaml:14:11: spec.output.path: "},
      {"pattern matches nothing", "  output:\n", "  tensors: {include: [nothing*]}\n  output:\n",
       "INVALID_ARGUMENT", "job.yaml:13:23: spec.tensors.include[0]: pattern 'nothing*'"},
  };
  for (const BadCase& c : cases) {
    auto r = Run("validate", c.from, c.to);
    EXPECT_EQ(r.exit_code, 1) << c.name;
    EXPECT_THAT(r.err, StartsWith(c.message)) << c.name;
    EXPECT_THAT(r.err, HasSubstr(std::string("[") + c.code + "]\n")) << c.name << ": " << r.err;
    EXPECT_EQ(r.out, "") << c.name;
    auto j = Run("validate --json", c.from, c.to);
    EXPECT_EQ(j.exit_code, 1) << c.name;
    const auto parsed = nlohmann::json::parse(j.out);
    EXPECT_EQ(parsed["valid"], false);
    EXPECT_EQ(parsed["code"], c.code);
  }
}

// Hostile input is quoted short and on one line: a 100 000-character name,
// and a file with a byte-order mark and a NUL byte (the NUL ends the name
// for YAML's purposes, so either way the message must stay one line).
TEST_F(JobCli, HostileInputGivesOneShortLine) {
  const std::string long_name(100000, 'a');
  auto r = Run("validate", "name: tiny", "name: " + long_name);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("is not a DNS-1123 label")) << r.err.substr(0, 200);
  EXPECT_THAT(r.err, HasSubstr("more bytes)'"));
  EXPECT_LT(r.err.size(), 600u);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  const std::string bom_nul = std::string("\xEF\xBB\xBF") + "apiVersion: glvq.io/v1";
  r = Run("validate", "apiVersion: glvq.io/v1", bom_nul);
  EXPECT_EQ(r.exit_code, 0) << "a BOM is allowed: " << r.err;
  r = Run("validate", "name: tiny", std::string("name: ti\0\nny", 12));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.find('\0'), std::string::npos);
}

TEST_F(JobCli, PlanJsonHasTasksAndTotals) {
  // The paper preset's tuning (no RHT, no row gains), so that down_proj can
  // split into ranges under a budget.
  const std::string from = "groupSize: 64", to = "groupSize: 64\n    preset: paper";
  auto r = Run("plan --json", from, to);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["tasks"].size(), 3u);
  uint64_t weights = 0;
  for (const auto& t : j["tasks"]) {
    for (const char* key : {"id", "tensor", "groups", "memory_bytes"}) {
      EXPECT_TRUE(t.contains(key)) << key;
    }
    weights += t["weights"].get<uint64_t>();
  }
  EXPECT_EQ(j["tasks"][0]["tensor"], "model.layers.0.mlp.down_proj.weight");
  EXPECT_EQ(j["tasks"][0]["groups"]["total"], 5);
  for (const char* key : {"tasks", "weights", "read_bytes", "write_bytes", "estimated_seconds"}) {
    EXPECT_TRUE(j["totals"].contains(key)) << key;
  }
  EXPECT_EQ(j["totals"]["tasks"], 3);
  EXPECT_EQ(j["totals"]["weights"], weights);
  EXPECT_EQ(j["pass_through"].size(), 3u);

  // up_proj (300 x 16: one group) holds as many weights as down_proj
  // (16 x 300: five groups) but less side information: its estimate as the
  // budget makes down_proj split, and only it.
  const uint64_t up_memory = j["tasks"][1]["memory_bytes"].get<uint64_t>();
  ASSERT_LT(up_memory, j["tasks"][0]["memory_bytes"].get<uint64_t>());
  r = Run("plan --json --max-task-memory " + std::to_string(up_memory), from, to);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto split = nlohmann::json::parse(r.out);
  ASSERT_EQ(split["tasks"].size(), 4u);
  EXPECT_EQ(split["tasks"][0]["groups"]["count"], 3);
  EXPECT_EQ(split["tasks"][1]["groups"]["first"], 3);
  EXPECT_EQ(split["totals"]["weights"], weights);
}

TEST_F(JobCli, PlanTableAndResourceErrors) {
  auto r = Run("plan");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("TASK"));
  EXPECT_THAT(r.out, HasSubstr("model.layers.0.mlp.down_proj.weight"));
  EXPECT_THAT(r.out, HasSubstr("[0, 5) of 5"));
  EXPECT_THAT(r.out, HasSubstr("model.embed_tokens.weight  (excluded by '*embed*')"));
  EXPECT_THAT(r.out, HasSubstr("totals: 3 tasks, 3 tensors quantized, 3 passed through"));
  EXPECT_THAT(r.out, HasSubstr("on one CPU core"));
  // gptq needs the whole tensor: a small budget is RESOURCE_EXHAUSTED.
  r = Run("plan --max-task-memory 64Ki", "method: glvq", "method: gptq");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("job.yaml: tensor 'model.layers.0.mlp.down_proj.weight' needs "));
  EXPECT_THAT(r.err, HasSubstr("[RESOURCE_EXHAUSTED]"));
}

// The plan measures the job's own settings here, unless told not to: a
// range (low <= high) next to the static estimate, and no key without it.
TEST_F(JobCli, PlanMeasuresTheTimeOnThisMachine) {
  auto r = Run("plan --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j["totals"].contains("measured_seconds")) << r.out;
  const double low = j["totals"]["measured_seconds"]["low"].get<double>();
  const double high = j["totals"]["measured_seconds"]["high"].get<double>();
  EXPECT_GT(low, 0.0);
  EXPECT_GE(high, low);
  EXPECT_TRUE(j["totals"].contains("estimated_seconds"));

  r = Run("plan --json --no-measure");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  EXPECT_FALSE(j["totals"].contains("measured_seconds"));

  r = Run("plan");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("measured here: "));
  r = Run("plan --no-measure");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("measured here")));
}

// --json is the one spelling (glvq-bench has it too); the older
// `--output json` still works for scripts but is not advertised.
TEST_F(JobCli, JsonIsTheOneFlagSpelling) {
  const auto a = Run("validate --json");
  const auto b = Run("validate --output json");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_TRUE(nlohmann::json::accept(a.out));
  const auto help = RunCommand(Glvq() + " validate --help");
  EXPECT_THAT(help.out, HasSubstr("--json"));
  EXPECT_THAT(help.out, Not(HasSubstr("--output")));
}

TEST_F(JobCli, UsageErrorsExitTwo) {
  EXPECT_EQ(RunCommand(Glvq() + " validate").exit_code, 2);
  EXPECT_EQ(Run("validate --output yaml").exit_code, 2);
  auto r = Run("plan --max-task-memory lots");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--max-task-memory: expected a byte count"));
  r = RunCommand(Glvq() + " validate /nonexistent/job.yaml");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "/nonexistent/job.yaml: no such file [NOT_FOUND]\n");
}

// The shipped example, next to the example model as the quickstart lays
// them out (examples/ and out/ side by side).
TEST(JobCliExample, ExampleModelJobValidatesAgainstTheExampleModel) {
  ScratchDir dir;
  fs::create_directories(dir / "examples");
  fs::copy_file(fs::path(GLVQ_SOURCE_DIR) / "examples/example-model-job.yaml",
                dir / "examples/example-model-job.yaml");
  auto r = RunCommand(Glvq() + " example-model --out " + (dir / "out/example-model").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string job = (dir / "examples/example-model-job.yaml").string();
  r = RunCommand(Glvq() + " validate " + job);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, job + ": valid (28 tensors to quantize, 10 passed through)\n");
  r = RunCommand(Glvq() + " plan --json " + job);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["totals"]["tasks"], 28);
  EXPECT_FALSE(fs::exists(dir / "out/example-model-glvq-2bit"));
}

// The best-quality SmolLM2 job's tensor patterns and override, against the
// example model (the same Llama tensor names; without Hessians, which
// the example model has none of).
TEST(JobCliExample, BestSmollm2JobsOverrideMatchesLlamaNames) {
  ScratchDir dir;
  auto r = RunCommand(Glvq() + " example-model --out " + (dir / "model").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto text = ReadFileToString(fs::path(GLVQ_SOURCE_DIR) / "examples/smollm2-best-2bit-job.yaml");
  ASSERT_TRUE(text.ok());
  std::string job = absl::StrReplaceAll(
      *text, {{"path: ../out/models/smollm2\n", "path: model\n"},
              {"  calibration:\n    hessians: ../out/models/smollm2/hessians\n", ""}});
  ASSERT_EQ(job.find("smollm2/hessians"), std::string::npos);
  testing::WriteFile(dir / "job.yaml", job);
  r = RunCommand(Glvq() + " validate " + (dir / "job.yaml").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  testing::WriteFile(dir / "typo.yaml", absl::StrReplaceAll(job, {{"*v_proj*", "*w_proj*"}}));
  r = RunCommand(Glvq() + " validate " + (dir / "typo.yaml").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("'*w_proj*' matches no quantized tensor"));
}

TEST(JobCliExample, FixtureHas35QuantizedAnd12PassedThrough) {
  const fs::path model = testing::Stories260KDir();
  if (!fs::exists(model / "model.safetensors")) GTEST_SKIP() << "fixture stories260K not found";
  ScratchDir dir;
  testing::WriteFile(dir / "job.yaml",
                     absl::StrReplaceAll(kJob, {{"path: model", "path: " + model.string()}}));
  auto r = RunCommand(Glvq() + " validate " + (dir / "job.yaml").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("valid (35 tensors to quantize, 12 passed through)"));
}

}  // namespace
}  // namespace glvq
