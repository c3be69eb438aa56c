#include "model/llama_ops.h"

#include <cmath>

namespace glvq::model {

RowMatrix Linear(const RowMatrix& x, const RowMatrix& w) {
  RowMatrix y(x.rows(), w.rows());
  y.noalias() = x * w.transpose();
  return y;
}

RowMatrix RmsNorm(const RowMatrix& x, const Eigen::VectorXf& weight, double eps) {
  RowMatrix y(x.rows(), x.cols());
  const float n = static_cast<float>(x.cols());
  const auto eps_f = static_cast<float>(eps);
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    const float inv_rms = 1.0f / std::sqrt(x.row(r).squaredNorm() / n + eps_f);
    y.row(r) = (x.row(r) * inv_rms).cwiseProduct(weight.transpose());
  }
  return y;
}

RopeTable MakeRopeTable(int64_t positions, int64_t head_dim, double theta) {
  const int64_t half = head_dim / 2;
  RopeTable t{RowMatrix(positions, half), RowMatrix(positions, half)};
  for (int64_t i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    const float inv_freq = 1.0f / std::pow(static_cast<float>(theta), exponent);
    for (int64_t p = 0; p < positions; ++p) {
      const float angle = static_cast<float>(p) * inv_freq;
      t.cos(p, i) = static_cast<float>(std::cos(static_cast<double>(angle)));
      t.sin(p, i) = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
  return t;
}

void ApplyRope(const RopeTable& rope, const std::vector<int64_t>& positions, int64_t head_dim,
               RowMatrix& x) {
  const int64_t half = head_dim / 2;
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    const auto c = rope.cos.row(positions[r]);
    const auto s = rope.sin.row(positions[r]);
    for (Eigen::Index h = 0; h < x.cols(); h += head_dim) {
      float* v = x.row(r).data() + h;
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * c(i) - b * s(i);
        v[i + half] = b * c(i) + a * s(i);
      }
    }
  }
}

RowMatrix SwiGlu(const RowMatrix& gate, const RowMatrix& up) {
  return (gate.array() / (1.0f + (-gate.array()).exp()) * up.array()).matrix();
}

}  // namespace glvq::model
