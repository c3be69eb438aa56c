#include "tests/support/test_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <Eigen/Dense>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/base/random.h"
#include "common/synthetic/example_model.h"

namespace glvq::testing {
namespace fs = std::filesystem;

ScratchDir::ScratchDir() {
  std::string tmpl = (fs::temp_directory_path() / "glvq-test-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

fs::path FixturesDir() {
  if (const char* env = std::getenv("GLVQ_FIXTURES_DIR")) return env;
  return GLVQ_DEFAULT_FIXTURES_DIR;
}

fs::path Stories260KDir() { return FixturesDir() / "stories260K"; }

fs::path BinDir() {
  if (const char* env = std::getenv("GLVQ_BIN_DIR")) return env;
  return GLVQ_DEFAULT_BIN_DIR;
}

namespace {
std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

CommandResult RunCommand(const std::string& command) {
  ScratchDir dir;
  const fs::path out = dir / "stdout";
  const fs::path err = dir / "stderr";
  const std::string full = command + " >'" + out.string() + "' 2>'" + err.string() + "'";
  const int status = std::system(full.c_str());
  CommandResult r;
  r.exit_code = (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  r.out = Slurp(out);
  r.err = Slurp(err);
  return r;
}

void WriteFile(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::vector<float> GaussianValues(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(rng.Normal());
  return v;
}

std::vector<float> LlmLikeValues(int64_t rows, int64_t cols, uint64_t seed) {
  LlmLikeWeightOptions o;
  o.rows = rows;
  o.cols = cols;
  o.seed = seed;
  return MakeLlmLikeWeight(o);
}

std::vector<double> CorrelatedHessian(int64_t n, uint64_t seed) {
  Rng rng(seed);
  Eigen::MatrixXd x(n, 3 * n);
  for (int64_t s = 0; s < x.cols(); ++s) {
    double prev = rng.Normal();
    for (int64_t i = 0; i < n; ++i) x(i, s) = prev = 0.6 * prev + 0.8 * rng.Normal();
  }
  x.row(3) *= 20.0;
  x.row(n / 2) *= 12.0;
  const Eigen::MatrixXd h = x * x.transpose() / static_cast<double>(x.cols());
  return std::vector<double>(h.data(), h.data() + h.size());  // symmetric: layout-free
}

std::map<std::string, TensorView, std::less<>> ComponentViews(const QuantizedTensor& qt) {
  std::map<std::string, TensorView, std::less<>> views;
  const std::string prefix = qt.name + ".glvq.";
  for (const TensorToWrite& t : ComponentTensors(qt)) {
    views[t.name.substr(prefix.size())] = TensorView{t.dtype, t.shape, t.data};
  }
  return views;
}

}  // namespace glvq::testing
