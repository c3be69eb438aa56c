// Job spec files: YAML onto the proto, strict keys and types with
// file:line:col, the one-schema mapping onto quant::QuantizerConfig, and
// the filesystem checks (every bad case leaves nothing written).
#include "common/jobspec/job_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>

#include "absl/strings/str_replace.h"
#include "common/jobspec/byte_quantity.h"
#include "common/jobspec/quantizer_spec.h"
#include "common/jobspec/yaml_proto.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/support/test_support.h"
#include "tests/support/tiny_model.h"

namespace glvq::jobspec {
namespace {
namespace fs = std::filesystem;
using glvq::testing::ScratchDir;
using google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Line numbers below refer to this text (1-based).
constexpr char kJob[] = R"(apiVersion: glvq.io/v1
kind: QuantizationJob
metadata:
  name: tiny-3bit
spec:
  model:
    path: model
  quantizer:
    method: glvq
    bits: 3
    dim: 4
    groupSize: 64
    mu: {min: 5, max: 100}
    rht: true
    iterations: 4
    refineSteps: 7
    seed: 42
    threads: 2
  output:
    path: out/tiny-3bit
  workers:
    backend: cpu
    maxTaskMemoryBytes: 512Mi
)";

absl::StatusOr<ParsedJob> Parse(const std::string& text, const fs::path& base = "/jobs") {
  return ParseJobYaml(text, "job.yaml", base);
}

// kJob with `from` replaced by `to` (which must occur).
std::string Edit(const std::string& from, const std::string& to) {
  std::string s = kJob;
  EXPECT_NE(s.find(from), std::string::npos) << from;
  return absl::StrReplaceAll(s, {{from, to}});
}

TEST(JobSpecParse, ValidSpecMapsEveryField) {
  auto parsed = Parse(kJob);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const v1::QuantizationJob& job = parsed->job;
  EXPECT_EQ(job.api_version(), "glvq.io/v1");
  EXPECT_EQ(job.metadata().name(), "tiny-3bit");
  EXPECT_EQ(job.spec().model().path(), "/jobs/model") << "relative to the file's directory";
  EXPECT_EQ(job.spec().output().path(), "/jobs/out/tiny-3bit");
  EXPECT_FALSE(job.spec().has_calibration());
  EXPECT_EQ(job.spec().workers().backend(), v1::BACKEND_CPU);
  EXPECT_EQ(job.spec().workers().max_task_memory_bytes(), 512u << 20);
  EXPECT_THAT(job.spec().tensors().include(), ::testing::ElementsAre("*"));
  EXPECT_THAT(job.spec().tensors().exclude(),
              ::testing::ElementsAre("*embed*", "*lm_head*", "*.wte.*", "*.wpe.*"));

  auto config = ToQuantizerConfig(job.spec().quantizer());
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->method, quant::Method::kGlvq);
  EXPECT_EQ(config->bits, 3.0);
  EXPECT_EQ(config->dim, 4);
  EXPECT_EQ(config->group_size, 64);
  EXPECT_EQ(config->glvq.mu_min, 5.0);
  EXPECT_EQ(config->glvq.mu_max, 100.0);
  EXPECT_TRUE(config->rht);
  EXPECT_FALSE(config->sdba);
  EXPECT_EQ(config->glvq.max_iters, 4);
  EXPECT_EQ(config->glvq.refine_steps, 7);
  EXPECT_EQ(config->seed, 42u);
  EXPECT_EQ(config->threads, 2);
  // Unset keys are the engine's defaults, written out by normalisation.
  const quant::QuantizerConfig defaults;
  EXPECT_EQ(config->damp, defaults.damp);
  EXPECT_EQ(config->glvq.tolerance, defaults.glvq.tolerance);
  EXPECT_TRUE(job.spec().quantizer().has_damp());
  // Round trip: spec -> config -> spec is the identity on a normalised spec.
  EXPECT_TRUE(MessageDifferencer::Equals(FromQuantizerConfig(*config), job.spec().quantizer()));
  // Positions of the fields are recorded (1-based).
  EXPECT_EQ(parsed->source.Find("spec.quantizer.bits").line, 10);
  EXPECT_EQ(parsed->source.Find("spec.quantizer.bits").column, 11);
}

TEST(JobSpecParse, MinimalSpecTakesEngineDefaults) {
  auto parsed = Parse(R"(apiVersion: glvq.io/v1
kind: QuantizationJob
metadata: {name: m}
spec:
  model: {path: /m}
  output: {path: /o}
)");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(MessageDifferencer::Equals(parsed->job.spec().quantizer(),
                                         FromQuantizerConfig(quant::QuantizerConfig())));
  EXPECT_EQ(parsed->job.spec().workers().backend(), v1::BACKEND_AUTO);
  EXPECT_FALSE(parsed->job.spec().workers().has_max_task_memory_bytes());
}

TEST(JobSpecParse, ExplicitEmptyExcludeIsKept) {
  auto parsed = Parse(Edit("  output:\n", "  tensors:\n    exclude: []\n  output:\n"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->job.spec().tensors().exclude_size(), 0);
  EXPECT_EQ(parsed->job.spec().tensors().include_size(), 1) << "include still defaulted";
}

TEST(JobSpecParse, QuantizerConfigRoundTripsEveryField) {
  quant::QuantizerConfig c;
  c.method = quant::Method::kGptq;
  c.bits = 4;
  c.dim = 16;
  c.group_size = 256;
  c.seed = 1234567890123ull;
  c.threads = 3;
  c.damp = 0.05;
  c.sdba = true;
  c.rht = true;
  c.ldlq = true;
  c.act_order = true;
  c.rtn_variant = quant::RtnVariant::kMinMax;
  c.glvq = {1, 2, 7, 3, 0.5, 4, 0.25, 0.125, true, false};
  c.pvq = {5, quant::PvqGainLevels::kBetaQuantile};
  c.trellis.window = 14;
  c.trellis.tile_rows = 4;
  c.refit_scales = false;  // the default is true
  auto back = ToQuantizerConfig(FromQuantizerConfig(c));
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(MessageDifferencer::Equals(FromQuantizerConfig(*back), FromQuantizerConfig(c)));
  EXPECT_EQ(back->method, c.method);
  EXPECT_EQ(back->rtn_variant, c.rtn_variant);
  EXPECT_EQ(back->glvq.lambda, 0.125);
  EXPECT_EQ(back->glvq.mu_grid, 7);
  EXPECT_FALSE(back->glvq.row_gain);
  EXPECT_EQ(back->trellis.window, 14);
  EXPECT_EQ(back->trellis.tile_rows, 4);
  EXPECT_FALSE(back->refit_scales);
  EXPECT_TRUE(back->glvq.exact_search);
  EXPECT_EQ(back->pvq.gain_bits, 5);
  EXPECT_EQ(back->pvq.gain_levels, quant::PvqGainLevels::kBetaQuantile);
}

// A spec that leaves the group size out gets its method's default: trellis
// measured best with 32 columns, the others with 128.
TEST(QuantizerSpec, GroupSizeDefaultsToTheMethods) {
  v1::QuantizerSpec trellis;
  trellis.set_method(v1::METHOD_TRELLIS);
  EXPECT_EQ(ToQuantizerConfig(trellis)->group_size, 16);
  EXPECT_EQ(ToQuantizerConfig(trellis)->trellis.tile_rows, 16);
  trellis.set_group_size(64);
  EXPECT_EQ(ToQuantizerConfig(trellis)->group_size, 64);
  v1::QuantizerSpec glvq;
  glvq.set_method(v1::METHOD_GLVQ);
  EXPECT_EQ(ToQuantizerConfig(glvq)->group_size, 128);
}

// `preset: paper` sets what the file leaves out; what it sets wins.
TEST(JobSpecParse, PresetFillsTheUnsetFields) {
  auto paper = Parse(Edit("    method: glvq\n", "    method: glvq\n    preset: paper\n"));
  ASSERT_TRUE(paper.ok()) << paper.status();
  const v1::QuantizerSpec& q = paper->job.spec().quantizer();
  EXPECT_EQ(q.mu().min(), 5) << "set by the file";
  EXPECT_TRUE(q.rht()) << "set by the file";
  EXPECT_FALSE(q.ldlq()) << "the paper's";
  EXPECT_FALSE(q.row_gain()) << "the paper's";
  EXPECT_EQ(q.mu().grid(), 0) << "the paper's";
  auto best = Parse(kJob);
  ASSERT_TRUE(best.ok()) << best.status();
  EXPECT_TRUE(best->job.spec().quantizer().ldlq());
  EXPECT_FALSE(best->job.spec().quantizer().row_gain()) << "off in both presets";
  EXPECT_EQ(best->job.spec().quantizer().mu().grid(), 6);
}

TEST(JobSpecParse, ProtoAndEngineSpellMethodsAlike) {
  std::set<std::string> proto_names;
  for (int i = 0; i < v1::Method_descriptor()->value_count(); ++i) {
    const auto* v = v1::Method_descriptor()->value(i);
    if (v->number() == 0) continue;
    proto_names.insert(YamlEnumName(v));
    auto m = ToEngineMethod(static_cast<v1::Method>(v->number()));
    ASSERT_TRUE(m.ok()) << v->name();
    EXPECT_EQ(quant::MethodName(*m), YamlEnumName(v));
  }
  EXPECT_EQ(proto_names.size(), quant::kAllMethods.size()) << "one proto value per method";
  for (quant::Method m : quant::kAllMethods) {
    EXPECT_NE(FromEngineMethod(m), v1::METHOD_UNSPECIFIED) << quant::MethodName(m);
    EXPECT_TRUE(proto_names.count(quant::MethodName(m)));
    EXPECT_EQ(quant::ParseMethod(quant::MethodName(m)), m);
    // The packed format spells a method's tensors with the method's own name
    // (gptq writes rtn's layout).
    EXPECT_EQ(quant::FormatMethod(m), m == quant::Method::kGptq ? std::string_view("rtn")
                                                                : quant::MethodName(m));
  }
  EXPECT_EQ(YamlEnumName(v1::RtnVariant_descriptor()->FindValueByName("RTN_VARIANT_CLIP_SEARCH")),
            "clipSearch");
  EXPECT_FALSE(ToEngineMethod(static_cast<v1::Method>(99)).ok());
}

TEST(JobSpecParse, UnknownKeyNamesFileLineColumnAndKnownKeys) {
  auto r = Parse(Edit("    seed: 42\n", "    seed: 42\n    foo: 1\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()),
              StartsWith("job.yaml:18:5: unknown key 'foo' in spec.quantizer (known: method, "
                         "bits, dim, groupSize, mu, sdba, rht, ldlq, exactSearch"));
  r = Parse(std::string(kJob) + "status: {}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              StartsWith("job.yaml:24:1: unknown key 'status' at the top level (known: "
                         "apiVersion, kind, metadata, spec)"));
  r = Parse(Edit("    path: model\n", "    path: model\n    revision: main\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              StartsWith("job.yaml:8:5: unknown key 'revision' in spec.model"));
}

struct BadCase {
  const char* from;
  const char* to;
  const char* expected;  // exact message prefix
};

TEST(JobSpecParse, BadValuesAreInvalidArgumentWithPosition) {
  const BadCase cases[] = {
      {"bits: 3", "bits: 9",
       "job.yaml:10:11: spec.quantizer.bits: bits must be within 1..8, got 9"},
      {"bits: 3", "bits: 0.5", "job.yaml:10:11: spec.quantizer.bits: bits must be within 1..8"},
      {"bits: 3", "bits: 2.5", "job.yaml:10:11: spec.quantizer.bits: fractional bits (2.5) need"},
      {"bits: 3", "bits: three",
       "job.yaml:10:11: spec.quantizer.bits: expected a finite number, got 'three'"},
      {"bits: 3", "bits: \"3\"",
       "job.yaml:10:11: spec.quantizer.bits: expected a number, got the string \"3\""},
      {"bits: 3", "bits: .nan", "job.yaml:10:11: spec.quantizer.bits: expected a finite number"},
      {"method: glvq", "method: awq",
       "job.yaml:9:13: spec.quantizer.method: unknown value 'awq' (known: glvq, rtn, gptq, e8p, "
       "pvq, trellis)"},
      {"method: glvq", "method: GLVQ",
       "job.yaml:9:13: spec.quantizer.method: unknown value 'GLVQ'"},
      {"dim: 4", "dim: 7",
       "job.yaml:11:10: spec.quantizer.dim: dim must be one of 2, 4, 8, 16, 32"},
      {"dim: 4", "dim: 4.0", "job.yaml:11:10: spec.quantizer.dim: expected an integer, got '4.0'"},
      {"dim: 4", "dim: 99999999999",
       "job.yaml:11:10: spec.quantizer.dim: integer 99999999999 is out of range"},
      {"groupSize: 64", "groupSize: 2",
       "job.yaml:12:16: spec.quantizer.groupSize: dim 4 is larger than the group size 2"},
      {"mu: {min: 5, max: 100}", "mu: {min: 500, max: 100}",
       "job.yaml:13:9: spec.quantizer.mu: mu range is inverted"},
      {"mu: {min: 5, max: 100}", "mu: {low: 5}",
       "job.yaml:13:10: unknown key 'low' in spec.quantizer.mu (known: min, max, grid)"},
      {"rht: true", "rht: yes",
       "job.yaml:14:10: spec.quantizer.rht: expected true or false, got 'yes'"},
      {"rht: true",
       "rht:", "job.yaml:14:5: spec.quantizer.rht: missing value (expected true or false)"},
      {"  model:\n    path: model\n", "  model:\n",
       "job.yaml:6:3: spec.model: missing value (expected a mapping)"},
      {"seed: 42", "seed: -1",
       "job.yaml:17:11: spec.quantizer.seed: expected a non-negative integer, got '-1'"},
      {"threads: 2", "threads: -1", "job.yaml:18:14: spec.quantizer.threads: threads must be within 0..1024"},
      {"threads: 2", "threads: 100000", "job.yaml:18:14: spec.quantizer.threads: threads must be within 0..1024"},
      {"method: glvq", "method: gptq\n    sdba: true",
       "job.yaml:9:13: spec.quantizer.method: sdba applies to glvq and trellis only"},
      {"backend: cpu", "backend: tpu",
       "job.yaml:22:14: spec.workers.backend: unknown value 'tpu' (known: auto, cpu, cuda)"},
      {"maxTaskMemoryBytes: 512Mi", "maxTaskMemoryBytes: 1.5Gi",
       "job.yaml:23:25: spec.workers.maxTaskMemoryBytes: expected a byte count"},
      {"name: tiny-3bit", "name: Tiny_3bit",
       "job.yaml:4:9: metadata.name: 'Tiny_3bit' is not a DNS-1123 label"},
      {"name: tiny-3bit", "name: -tiny",
       "job.yaml:4:9: metadata.name: '-tiny' is not a DNS-1123 label"},
      {"apiVersion: glvq.io/v1", "apiVersion: glvq.io/v2",
       "job.yaml:1:13: apiVersion: expected 'glvq.io/v1', got 'glvq.io/v2'"},
      {"kind: QuantizationJob", "kind: Job",
       "job.yaml:2:7: kind: expected 'QuantizationJob', got 'Job'"},
      {"    path: model\n", "    file: model\n", "job.yaml:7:5: unknown key 'file' in spec.model"},
      {"  model:\n    path: model\n", "  model: {}\n",
       "job.yaml:6:10: spec.model: missing required key 'path'"},
      {"  model:\n    path: model\n", "", "job.yaml:6:3: spec: missing required key 'model'"},
      {"  model:\n    path: model\n", "  model: model\n",
       "job.yaml:6:10: spec.model: expected a mapping, got a scalar"},
      {"  output:\n    path: out/tiny-3bit\n", "  tensors:\n    include: \"*\"\n",
       "job.yaml:20:14: spec.tensors.include: expected a list, got a scalar"},
      {"  output:\n    path: out/tiny-3bit\n",
       "  tensors:\n    include: [\"\"]\n  output: {path: o}\n",
       "job.yaml:20:15: spec.tensors.include[0]: empty pattern"},
      {"    seed: 42\n", "    seed: 42\n    seed: 43\n",
       "job.yaml:18:5: spec.quantizer: duplicate key 'seed'"},
      {"    seed: 42\n", "    seed: [42\n", "job.yaml:"},
  };
  for (const BadCase& c : cases) {
    auto r = Parse(Edit(c.from, c.to));
    ASSERT_FALSE(r.ok()) << c.to;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.to;
    EXPECT_THAT(std::string(r.status().message()), StartsWith(c.expected)) << c.to;
  }
}

// spec.tensors.overrides: parsed from YAML; each needs a pattern and bits,
// and the quantizer it gives must be valid (glvq at 9 bits is not).
TEST(JobSpecParse, TensorOverrides) {
  auto ok = Parse(Edit("  output:\n", "  tensors:\n    overrides:\n"
                                        "      - {pattern: \"*v_proj*\", bits: 4}\n  output:\n"));
  ASSERT_TRUE(ok.ok()) << ok.status();
  ASSERT_EQ(ok->job.spec().tensors().overrides_size(), 1);
  EXPECT_EQ(ok->job.spec().tensors().overrides(0).pattern(), "*v_proj*");
  EXPECT_EQ(ok->job.spec().tensors().overrides(0).bits(), 4);
  EXPECT_EQ(QuantizerFor(ok->job.spec(), "model.layers.3.self_attn.v_proj.weight").bits(), 4);
  EXPECT_EQ(QuantizerFor(ok->job.spec(), "model.layers.3.self_attn.k_proj.weight").bits(), 3);
  const struct {
    std::string item, expected;
  } cases[] = {
      {"{pattern: \"\", bits: 4}", "spec.tensors.overrides[0].pattern: empty pattern"},
      {"{pattern: \"*\"}", "spec.tensors.overrides[0]: an override must set bits"},
      {"{pattern: \"*\", bits: 9}", "spec.tensors.overrides[0].bits: bits must be within 1..8"},
  };
  for (const auto& c : cases) {
    auto r = Parse(Edit("  output:\n", "  tensors:\n    overrides:\n      - " + c.item +
                                          "\n  output:\n"));
    ASSERT_FALSE(r.ok()) << c.item;
    EXPECT_THAT(std::string(r.status().message()), StartsWith("job.yaml:21:"));
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.expected));
  }
}

TEST(JobSpecParse, Finetune) {
  auto ok = Parse(Edit("  output:\n", "  finetune:\n    tokens: calib.tokens\n    steps: 50\n"
                                        "    seqLen: 128\n    learningRate: 0.002\n  output:\n"));
  ASSERT_TRUE(ok.ok()) << ok.status();
  const v1::Finetune& f = ok->job.spec().finetune();
  EXPECT_EQ(f.tokens(), "/jobs/calib.tokens") << "resolved against the file's directory";
  EXPECT_EQ(f.steps(), 50);
  EXPECT_EQ(f.seq_len(), 128);
  EXPECT_FALSE(f.has_windows_per_step());
  EXPECT_EQ(f.learning_rate(), 0.002);
  const struct {
    std::string item, expected;
  } cases[] = {
      {"{steps: 10}", "spec.finetune: name a token file in 'tokens'"},
      {"{tokens: t, steps: 0}", "spec.finetune.steps: 0 is not in [1, 1000000]"},
      {"{tokens: t, seqLen: 1}", "spec.finetune.seqLen: 1 is not in [2, 4096]"},
      {"{tokens: t, windowsPerStep: 300}", "spec.finetune.windowsPerStep: 300 is not in [1, 256]"},
      {"{tokens: t, seqLen: 5000}", "spec.finetune.seqLen: 5000 is not in [2, 4096]"},
      {"{tokens: t, learningRate: 2}", "spec.finetune.learningRate: 2 is not in (0, 1]"},
      {"{tokens: t, learningRate: -1}", "spec.finetune.learningRate: -1 is not in (0, 1]"},
  };
  for (const auto& c : cases) {
    auto r = Parse(Edit("  output:\n", "  finetune: " + c.item + "\n  output:\n"));
    ASSERT_FALSE(r.ok()) << c.item;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.item;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.expected)) << r.status();
  }
}

TEST(JobSpecParse, DocumentLevelErrors) {
  for (const char* text : {"", "# only a comment\n", "~\n"}) {
    auto r = Parse(text);
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(std::string(r.status().message()), StartsWith("job.yaml: empty job spec"));
  }
  // The position is the second document's "---".
  auto r = Parse(std::string(kJob) + "---\nkind: QuantizationJob\n");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              StartsWith("job.yaml:24:1: a job file holds exactly one"));
  r = Parse("- a\n- b\n");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              StartsWith("job.yaml:1:1: the job: expected a mapping"));
  r = Parse("apiVersion: glvq.io/v1\nkind: QuantizationJob\nmetadata: {name: x}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              StartsWith("job.yaml:1:1: missing required key 'spec'"));
}

TEST(JobSpecValidate, SpecBuiltInCodeNeedsAbsolutePaths) {
  v1::QuantizationJob job;
  job.set_api_version(kApiVersion);
  job.set_kind(kKind);
  job.mutable_metadata()->set_name("j");
  job.mutable_spec()->mutable_model()->set_path("relative/model");
  job.mutable_spec()->mutable_output()->set_path("/out");
  absl::Status s = ValidateJob(job);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "spec.model.path: 'relative/model' must be an absolute path");
  job.mutable_spec()->mutable_model()->set_path("/model");
  EXPECT_TRUE(ValidateJob(job).ok()) << "unset quantizer fields are the engine defaults";
  job.mutable_spec()->mutable_quantizer()->set_bits(9);
  EXPECT_THAT(std::string(ValidateJob(job).message()),
              StartsWith("spec.quantizer: bits must be within 1..8"));
}

TEST(JobSpecValidate, Dns1123Labels) {
  for (const char* ok : {"a", "job-1", "0abc", "llama-70b-2bit"})
    EXPECT_TRUE(IsDns1123Label(ok)) << ok;
  for (const std::string& bad :
       {std::string(), std::string("-a"), std::string("a-"), std::string("A"), std::string("a_b"),
        std::string("a.b"), std::string(64, 'a')}) {
    EXPECT_FALSE(IsDns1123Label(bad)) << bad;
  }
  EXPECT_TRUE(IsDns1123Label(std::string(63, 'a')));
}

TEST(ByteQuantity, ParsesIntegersAndSuffixes) {
  EXPECT_EQ(*ParseByteQuantity("0"), 0u);
  EXPECT_EQ(*ParseByteQuantity("4096"), 4096u);
  EXPECT_EQ(*ParseByteQuantity("8Gi"), 8ull << 30);
  EXPECT_EQ(*ParseByteQuantity("512Mi"), 512ull << 20);
  EXPECT_EQ(*ParseByteQuantity("3Ki"), 3072u);
  EXPECT_EQ(*ParseByteQuantity("4G"), 4'000'000'000ull);
  EXPECT_EQ(*ParseByteQuantity("2k"), 2000u);
  for (const char* bad :
       {"", "Gi", "-1", "1.5Gi", "8gi", "8 Gi", "0x10", "99999999999999999999", "20000000Ti"}) {
    EXPECT_EQ(ParseByteQuantity(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(3u << 20), "3.00 MiB");
}

// ---- the filesystem -----------------------------------------------------------

class JobEnvironment : public ::testing::Test {
 protected:
  void SetUp() override { glvq::testing::WriteTinyModel(dir_ / "model"); }

  // Parses kJob (edited) with paths relative to the scratch dir and checks
  // it against the filesystem; the scratch dir must be unchanged after.
  absl::StatusOr<JobInputs> Check(const std::string& from = "", const std::string& to = "") {
    const std::set<fs::path> before = Listing();
    const std::string text = from.empty() ? std::string(kJob) : Edit(from, to);
    auto parsed = ParseJobYaml(text, "job.yaml", dir_.path());
    if (!parsed.ok()) return parsed.status();
    auto inputs = CheckJobEnvironment(parsed->job.spec(), &parsed->source);
    EXPECT_EQ(Listing(), before) << "a check wrote something";
    return inputs;
  }

  std::set<fs::path> Listing() const {
    std::set<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(dir_.path())) files.insert(e.path());
    return files;
  }

  ScratchDir dir_;
};

TEST_F(JobEnvironment, ValidSpecOpensTheModel) {
  auto inputs = Check();
  ASSERT_TRUE(inputs.ok()) << inputs.status();
  EXPECT_EQ(inputs->model.tensor_names().size(), glvq::testing::TinyModelTensors().size());
  EXPECT_FALSE(inputs->hessians.has_value());
  // A file as the model works as well.
  EXPECT_TRUE(Check("path: model", "path: model/model.safetensors").ok());
}

TEST_F(JobEnvironment, MissingModelIsFailedPrecondition) {
  auto r = Check("path: model", "path: nothing-here");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(r.status().message()),
              StartsWith("job.yaml:7:11: spec.model.path: " + (dir_ / "nothing-here").string() +
                         ": no such file or directory"));
  fs::create_directories(dir_ / "empty");
  r = Check("path: model", "path: empty");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_THAT(std::string(r.status().message()), StartsWith("job.yaml:7:11: spec.model.path: "));
}

TEST_F(JobEnvironment, MalformedOrPackedModelIsInvalidArgument) {
  glvq::testing::WriteFile(dir_ / "bad.safetensors", "not a safetensors file");
  auto r = Check("path: model", "path: bad.safetensors");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  glvq::testing::WriteFile(dir_ / "model" / "glvq_manifest.json", "{}");
  r = Check();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("is a glvq packed model"));
}

TEST_F(JobEnvironment, OutputInsideOrEqualToTheModelIsInvalidArgument) {
  auto r = Check("path: out/tiny-3bit", "path: model/quantized");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()),
              StartsWith("job.yaml:20:11: spec.output.path: " +
                         (dir_ / "model/quantized").string() + " is inside the model directory"));
  r = Check("path: out/tiny-3bit", "path: model/");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(" is the model directory"));
  // Through a symlink as well.
  fs::create_directory_symlink(dir_ / "model", dir_ / "alias");
  r = Check("path: out/tiny-3bit", "path: alias/q");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("is inside the model directory"));
}

TEST_F(JobEnvironment, ExistingOutputIsFailedPrecondition) {
  fs::create_directories(dir_ / "out" / "tiny-3bit");
  auto r = Check();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("already exists; glvq never overwrites"));
}

TEST_F(JobEnvironment, OutputThatCannotBeCreatedIsFailedPrecondition) {
  // Tests run as root, for whom permission bits do not stop writes: a
  // regular file in the path is what makes the output impossible.
  glvq::testing::WriteFile(dir_ / "afile", "x");
  auto r = Check("path: out/tiny-3bit", "path: afile/sub/q");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(r.status().message()),
              StartsWith("job.yaml:20:11: spec.output.path: cannot create " +
                         (dir_ / "afile/sub/q").string() + ": " + (dir_ / "afile").string() +
                         " is not a directory"));
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

TEST_F(JobEnvironment, CalibrationMustBeADirectoryOfSafetensors) {
  const std::string with = "  output:\n";
  auto r = Check(with, "  calibration: {hessians: no-such-dir}\n" + with);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("spec.calibration.hessians: "));
  glvq::testing::WriteTinyModel(dir_ / "hessians");
  r = Check(with, "  calibration: {hessians: hessians}\n" + with);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->hessians.has_value());
  r = Check("path: out/tiny-3bit", "path: hessians/q\n  calibration: {hessians: hessians}");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("inside the calibration directory"));
}

}  // namespace
}  // namespace glvq::jobspec
