#include "model/finetune.h"

#include <chrono>
#include <cmath>
#include <numbers>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/base/crc32c.h"
#include "common/base/parallel.h"
#include "common/base/random.h"
#include "common/base/status_macros.h"
#include "common/quant/result.h"
#include "model/calibration.h"
#include "model/llama_config.h"

namespace glvq::model {
namespace {

// One tunable vector of the model.
struct ParamRef {
  enum Kind { kRowGain, kGroupGain, kInputNorm, kPostNorm, kFinalNorm } kind;
  size_t layer = 0;
  int slot = 0;
};

// The vector `p` names in a TunableLlama (the values) or a TunableGrad
// (their gradients): both name their members alike.
template <typename Model>
auto& Select(Model& m, const ParamRef& p) {
  switch (p.kind) {
    case ParamRef::kRowGain:
      return m.layers[p.layer].linears[p.slot].log_row_gain;
    case ParamRef::kGroupGain:
      return m.layers[p.layer].linears[p.slot].log_group_gain;
    case ParamRef::kInputNorm:
      return m.layers[p.layer].input_layernorm;
    case ParamRef::kPostNorm:
      return m.layers[p.layer].post_attention_layernorm;
    case ParamRef::kFinalNorm:
      break;
  }
  return m.norm;
}

std::vector<ParamRef> TunableParams(const TunableLlama& m, const FinetuneOptions& o) {
  std::vector<ParamRef> out;
  for (size_t l = 0; l < m.layers.size(); ++l) {
    for (int s = 0; s < kNumLinearSlots && o.tune_gains; ++s) {
      const GainLinear& lin = m.layers[l].linears[s];
      if (lin.tune_rows) out.push_back({ParamRef::kRowGain, l, s});
      if (lin.tune_groups) out.push_back({ParamRef::kGroupGain, l, s});
    }
    if (o.tune_norms) {
      out.push_back({ParamRef::kInputNorm, l, 0});
      out.push_back({ParamRef::kPostNorm, l, 0});
    }
  }
  if (o.tune_norms) out.push_back({ParamRef::kFinalNorm, 0, 0});
  return out;
}

// Adam (Kingma & Ba) over the tunable vectors.
class Adam {
 public:
  Adam(TunableLlama& m, std::vector<ParamRef> params) : params_(std::move(params)) {
    for (const ParamRef& p : params_) {
      first_.push_back(Eigen::VectorXd::Zero(Select(m, p).size()));
      second_.push_back(first_.back());
    }
  }
  void Step(TunableLlama& m, const TunableGrad& g, double lr) {
    constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kEps = 1e-8;
    ++t_;
    const double c1 = 1 - std::pow(kBeta1, t_), c2 = 1 - std::pow(kBeta2, t_);
    for (size_t i = 0; i < params_.size(); ++i) {
      const Eigen::VectorXd& d = Select(g, params_[i]);
      first_[i] = kBeta1 * first_[i] + (1 - kBeta1) * d;
      second_[i] = kBeta2 * second_[i] + (1 - kBeta2) * d.cwiseAbs2();
      const Eigen::VectorXd step =
          lr * (first_[i] / c1).array() / ((second_[i] / c2).array().sqrt() + kEps);
      Select(m, params_[i]) -= step.cast<float>();
    }
  }
  int64_t size() const {
    int64_t n = 0;
    for (const auto& f : first_) n += f.size();
    return n;
  }

 private:
  std::vector<ParamRef> params_;
  std::vector<Eigen::VectorXd> first_, second_;
  int t_ = 0;
};

std::vector<TokenSequence> CutWindows(std::span<const TokenSequence> sequences, int64_t len) {
  std::vector<TokenSequence> out;
  for (const TokenSequence& s : sequences) {
    const auto n = static_cast<int64_t>(s.size());
    if (n == 0) continue;
    if (n <= len) {
      out.push_back(s);
      continue;
    }
    for (int64_t i = 0; i + len <= n; i += len)
      out.emplace_back(s.begin() + i, s.begin() + i + len);
  }
  return out;
}

absl::Status CheckOptions(const FinetuneOptions& o) {
  if (o.steps < 1 || o.steps > 1000000 || o.seq_len < 2 || o.seq_len > kMaxFinetuneSeqLen ||
      o.windows_per_step < 1 || o.windows_per_step > kMaxFinetuneWindowsPerStep ||
      !(o.learning_rate > 0) || !(o.learning_rate <= 1) || o.threads < 0 || o.threads > 4096) {
    return absl::InvalidArgumentError(
        absl::StrCat("fine-tuning options out of range: steps 1..1000000, seq_len 2..",
                     kMaxFinetuneSeqLen, ", windows per step 1..", kMaxFinetuneWindowsPerStep,
                     ", learning rate in (0, 1], threads 0..4096"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<FinetuneReport> Finetune(const LlamaModel& teacher, TunableLlama& student,
                                        std::span<const TokenSequence> sequences,
                                        const FinetuneOptions& options,
                                        const FinetuneProgress& progress) {
  RETURN_IF_ERROR(CheckOptions(options));
  RETURN_IF_ERROR(student.Check());
  if (!(teacher.config() == student.config)) {
    return absl::InvalidArgumentError("the original and the quantized model differ in config");
  }
  const std::vector<TokenSequence> windows = CutWindows(sequences, options.seq_len);
  if (windows.empty()) return absl::InvalidArgumentError("fine-tuning needs calibration tokens");
  const auto start = std::chrono::steady_clock::now();
  Adam adam(student, TunableParams(student, options));
  FinetuneReport report;
  report.parameters = adam.size();
  report.windows = static_cast<int64_t>(windows.size());
  const auto per_step = static_cast<size_t>(options.windows_per_step);
  std::vector<TunableGrad> grads(per_step);
  std::vector<absl::StatusOr<double>> kl(per_step, 0.0);
  for (int64_t step = 0; step < options.steps; ++step) {
    Rng rng(DeriveSeed(options.seed, static_cast<uint64_t>(step)));
    std::vector<size_t> pick(per_step);
    for (size_t& p : pick) p = static_cast<size_t>(rng.Below(windows.size()));
    ParallelFor(options.windows_per_step, options.threads, [&](int64_t i) {
      const TokenSequence& w = windows[pick[static_cast<size_t>(i)]];
      auto& slot = kl[static_cast<size_t>(i)];
      absl::StatusOr<RowMatrix> logits = teacher.Forward(std::span(&w, 1));
      if (!logits.ok()) {
        slot = logits.status();
        return;
      }
      LogSoftmaxRows(*logits);
      grads[static_cast<size_t>(i)].Resize(student);
      slot = KlGradient(student, w, *logits, grads[static_cast<size_t>(i)]);
    });
    double mean = 0;
    for (size_t i = 0; i < per_step; ++i) {
      RETURN_IF_ERROR(kl[i].status());
      mean += *kl[i] / static_cast<double>(per_step);
      if (i > 0) grads[0].Add(grads[i]);
    }
    grads[0].Scale(1.0 / static_cast<double>(per_step));
    const double lr = options.learning_rate * 0.5 *
                      (1 + std::cos(std::numbers::pi * static_cast<double>(step) /
                                    static_cast<double>(options.steps)));
    adam.Step(student, grads[0], lr);
    report.kl.push_back(mean);
    if (progress) progress(step, mean);
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

namespace {

std::string LinearName(size_t layer, int slot) {
  return absl::StrCat("model.layers.", layer, ".", LinearSlotName(slot), ".weight");
}
std::string BiasName(size_t layer, int slot) {
  return absl::StrCat("model.layers.", layer, ".", LinearSlotName(slot), ".bias");
}

absl::StatusOr<RowMatrix> DenseOf(const PackedModel& packed, const std::string& name, int64_t rows,
                                  int64_t cols) {
  ASSIGN_OR_RETURN(const std::vector<float> v, packed.Dequantize(name));
  if (static_cast<int64_t>(v.size()) != rows * cols) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " does not have ", rows, "x", cols, " values"));
  }
  return RowMatrix(Eigen::Map<const RowMatrix>(v.data(), rows, cols));
}

absl::StatusOr<Eigen::VectorXf> VectorOf(const PackedModel& packed, const std::string& name,
                                         int64_t n) {
  ASSIGN_OR_RETURN(const RowMatrix m, DenseOf(packed, name, 1, n));
  return Eigen::VectorXf(m.row(0).transpose());
}

// The gains a method stores: (rows, groups).
std::pair<bool, bool> StorableGains(const QuantizedTensor& qt) {
  if (qt.method == kMethodTrellis || qt.method == kMethodRtn) return {true, true};
  if (qt.method == kMethodE8p) return {false, true};
  if (qt.method == kMethodGlvq) return {!qt.row_scale.empty(), true};
  if (qt.method == kMethodPvq) return {true, false};
  return {false, false};
}

absl::StatusOr<GainLinear> LoadLinear(const PackedModel& packed, const std::string& name,
                                      int64_t rows, int64_t cols) {
  if (!packed.IsQuantized(name)) {
    ASSIGN_OR_RETURN(RowMatrix w, DenseOf(packed, name, rows, cols));
    return GainLinear::Make(std::move(w), std::nullopt, cols, false, false);
  }
  ASSIGN_OR_RETURN(QuantizedTensor qt, packed.LoadQuantized(name));
  if (qt.rows != rows || qt.cols != cols) {
    return absl::InvalidArgumentError(absl::StrCat(name, " is not ", rows, "x", cols));
  }
  std::optional<RhtSeeds> rht;
  if (!qt.rht_seed.empty()) {
    rht = RhtSeeds{static_cast<uint64_t>(qt.rht_seed[0]), static_cast<uint64_t>(qt.rht_seed[1])};
  }
  qt.rht_seed.clear();  // decode W̃, the weights in the codes' basis
  RowMatrix base(rows, cols);
  RETURN_IF_ERROR(DequantizeRef(qt, std::span<float>(base.data(), base.size())));
  const auto [tune_rows, tune_groups] = StorableGains(qt);
  return GainLinear::Make(std::move(base), rht, qt.group_size, tune_rows, tune_groups);
}

}  // namespace

absl::StatusOr<TunableLlama> LoadTunable(const PackedModel& packed) {
  TunableLlama m;
  ASSIGN_OR_RETURN(m.config, LoadLlamaConfig(packed.directory()));
  const LlamaConfig& c = m.config;
  ASSIGN_OR_RETURN(m.embed_tokens,
                   DenseOf(packed, "model.embed_tokens.weight", c.vocab_size, c.hidden_size));
  if (!c.tie_word_embeddings) {
    ASSIGN_OR_RETURN(m.lm_head, DenseOf(packed, "lm_head.weight", c.vocab_size, c.hidden_size));
  }
  ASSIGN_OR_RETURN(m.norm, VectorOf(packed, "model.norm.weight", c.hidden_size));
  const int64_t h = c.hidden_size;
  const bool biased[kNumLinearSlots] = {c.qkv_bias, c.qkv_bias, c.qkv_bias, c.o_bias,
                                        c.mlp_bias, c.mlp_bias, c.mlp_bias};
  m.layers.resize(static_cast<size_t>(c.num_layers));
  for (size_t l = 0; l < m.layers.size(); ++l) {
    TunableLayer& t = m.layers[l];
    for (int s = 0; s < kNumLinearSlots; ++s) {
      const auto [rows, cols] = LinearSlotShape(c, s);
      ASSIGN_OR_RETURN(t.linears[s], LoadLinear(packed, LinearName(l, s), rows, cols));
      if (biased[s]) {
        ASSIGN_OR_RETURN(t.linears[s].bias, VectorOf(packed, BiasName(l, s), rows));
      }
    }
    const std::string p = absl::StrCat("model.layers.", l, ".");
    ASSIGN_OR_RETURN(t.input_layernorm, VectorOf(packed, p + "input_layernorm.weight", h));
    ASSIGN_OR_RETURN(t.post_attention_layernorm,
                     VectorOf(packed, p + "post_attention_layernorm.weight", h));
  }
  RETURN_IF_ERROR(m.Check());
  return m;
}

namespace {

// `qt` with the tuned gains of `l` multiplied into its stored gains.
void FoldGains(const GainLinear& l, QuantizedTensor& qt) {
  const int64_t groups = qt.NumGroups();
  const auto a = [&](int64_t r) { return std::exp(static_cast<double>(l.log_row_gain(r))); };
  const auto b = [&](int64_t g) { return std::exp(static_cast<double>(l.log_group_gain(g))); };
  const auto mul = [](float& v, double f) { v = static_cast<float>(static_cast<double>(v) * f); };
  if (qt.method == kMethodRtn) {
    for (int64_t g = 0; g < groups; ++g) {
      for (int64_t r = 0; r < qt.rows; ++r) mul(qt.scale[g * qt.rows + r], a(r) * b(g));
    }
  } else if (qt.method == kMethodPvq) {
    for (int64_t r = 0; r < qt.rows; ++r) mul(qt.norms[r], a(r));
  } else {
    if (l.tune_groups) {
      for (int64_t g = 0; g < groups; ++g) mul(qt.scale[g], b(g));
    }
    if (l.tune_rows) {
      for (int64_t r = 0; r < qt.rows; ++r) mul(qt.row_scale[r], a(r));
    }
  }
}

// `qt`'s quality against the original weight `w`, with the weight's Hessian
// from `hessians` when given (else H = I).
absl::StatusOr<TensorQuality> Measure(const QuantizedTensor& qt, const RowMatrix& w,
                                      const SafetensorsModel* hessians) {
  RowMatrix approx(qt.rows, qt.cols);
  RETURN_IF_ERROR(DequantizeRef(qt, std::span<float>(approx.data(), approx.size())));
  const Eigen::MatrixXd delta = (w - approx).cast<double>(), ref = w.cast<double>();
  quant::QualitySums sums;
  sums.error = delta.squaredNorm();
  sums.reference = ref.squaredNorm();
  sums.proxy_error = sums.error;
  sums.proxy_reference = sums.reference;
  if (hessians != nullptr) {
    ASSIGN_OR_RETURN(const std::optional<WeightHessian> h, LoadHessianFor(*hessians, qt.name));
    if (h && h->n == qt.cols) {
      const Eigen::Map<const Eigen::MatrixXd> hm(h->data.data(), h->n, h->n);
      sums.proxy_error = (delta * hm).cwiseProduct(delta).sum();
      sums.proxy_reference = (ref * hm).cwiseProduct(ref).sum();
    }
  }
  sums.top_error = quant::TopWeightError(std::span<const float>(w.data(), w.size()),
                                         std::span<const float>(approx.data(), approx.size()));
  return sums.Quality();
}

// Checks that the pass-through tensors of `source` are those `packed` was
// written with (other than those fine-tuning replaces).
absl::Status CheckSameSource(const PackedModel& packed, const SafetensorsModel& source,
                             const PassthroughValues& replaced) {
  for (const ManifestTensor& t : packed.manifest().tensors) {
    if (t.quantized || replaced.contains(t.name)) continue;
    const TensorEntry* e = source.Find(t.name);
    absl::StatusOr<TensorView> view = source.Get(t.name);
    if (e == nullptr || !view.ok() || Crc32c(view->data) != t.crc32c) {
      return absl::FailedPreconditionError(absl::StrCat(
          source.directory().string(), " is not the model the packed model was made from (tensor ",
          t.name, " differs)"));
    }
  }
  return absl::OkStatus();
}

absl::Status AddNorm(const SafetensorsModel& source, const std::string& name,
                     const Eigen::VectorXf& v, PassthroughValues& out) {
  const TensorEntry* e = source.Find(name);
  if (e == nullptr || !IsFloatDType(e->dtype)) {
    return absl::InvalidArgumentError(absl::StrCat("the source has no float tensor ", name));
  }
  std::vector<std::byte> bytes(static_cast<size_t>(v.size()) * DTypeSize(e->dtype));
  RETURN_IF_ERROR(ConvertFromF32(std::span<const float>(v.data(), v.size()), e->dtype, bytes));
  out.emplace(name, std::move(bytes));
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteFinetuned(const PackedModel& packed, const TunableLlama& tuned,
                            const FinetuneSource& original, const FinetuneOptions& options,
                            const FinetuneReport& report, const std::filesystem::path& out_dir) {
  RETURN_IF_ERROR(tuned.Check());
  const SafetensorsModel& source = original.files;
  PassthroughValues norms;
  if (options.tune_norms) {
    RETURN_IF_ERROR(AddNorm(source, "model.norm.weight", tuned.norm, norms));
    for (size_t l = 0; l < tuned.layers.size(); ++l) {
      const std::string p = absl::StrCat("model.layers.", l, ".");
      RETURN_IF_ERROR(
          AddNorm(source, p + "input_layernorm.weight", tuned.layers[l].input_layernorm, norms));
      RETURN_IF_ERROR(AddNorm(source, p + "post_attention_layernorm.weight",
                              tuned.layers[l].post_attention_layernorm, norms));
    }
  }
  RETURN_IF_ERROR(CheckSameSource(packed, source, norms));
  std::vector<QuantizedTensor> quantized;
  for (const ManifestTensor& t : packed.manifest().tensors) {
    if (!t.quantized) continue;
    ASSIGN_OR_RETURN(QuantizedTensor qt, packed.LoadQuantized(t.name));
    for (size_t l = 0; l < tuned.layers.size(); ++l) {
      for (int s = 0; s < kNumLinearSlots; ++s) {
        if (t.name != LinearName(l, s) || !options.tune_gains) continue;
        FoldGains(tuned.layers[l].linears[s], qt);
        ASSIGN_OR_RETURN(qt.quality,
                         Measure(qt, LinearSlotWeight(original.model.weights().layers[l], s),
                                 original.hessians));
      }
    }
    quantized.push_back(std::move(qt));
  }
  QuantizationConfig config = packed.manifest().config;
  auto& p = config.parameters;
  p["finetune_steps"] = options.steps;
  p["finetune_seq_len"] = options.seq_len;
  p["finetune_windows_per_step"] = options.windows_per_step;
  p["finetune_learning_rate"] = options.learning_rate;
  p["finetune_seed"] = static_cast<int64_t>(options.seed);
  p["finetune_norms"] = options.tune_norms;
  p["finetune_gains"] = options.tune_gains;
  if (!report.kl.empty()) {
    p["finetune_kl_first"] = report.kl.front();
    p["finetune_kl_last"] = report.kl.back();
  }
  return WritePackedModel(out_dir, source, quantized, config, uint64_t{5} << 30, &norms);
}

}  // namespace glvq::model
