// The validated inputs a method's QuantizeImpl works on.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <string>

#include "worker/engine/hessian.h"
#include "worker/engine/quantizer.h"

namespace glvq::engine {

struct Quantizer::Problem {
  std::string name;          // tensor name
  MatrixView w;              // finite, rows, cols >= 1
  PreparedHessian hessian;   // damped, or the identity
  uint64_t seed = 0;         // config seed mixed with the tensor name
  int64_t num_groups = 0;    // column groups of config.group_size
};

// Fills the scalar fields of a QuantizedTensor (name, the format method of
// c.method, shape, group size, dim) from the problem; arrays are left to the
// method.
QuantizedTensor MakeTensorShell(const Quantizer::Problem& p, const quant::QuantizerConfig& c,
                                int64_t dim);

// The problem's weights as a rows × cols double matrix (a copy).
inline Eigen::MatrixXd WeightsInDouble(const Quantizer::Problem& p) {
  return Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
             p.w.data, p.w.rows, p.w.cols)
      .cast<double>();
}

}  // namespace glvq::engine
