// The BlockLDLQ sweep that E8P and PVQ share (docs/algorithms.md §3): columns
// coded d at a time, each block's error fed forward to the later columns
// through U = chol(H⁻¹) (upper), with the feedback onto columns beyond the
// current batch applied lazily as one product.
#pragma once

#include <cstdint>
#include <functional>

#include "Eigen/Dense"

namespace glvq::cpu {

// Rows per parallel task of SweepBlockLdlq: fixed, so that every product is
// identical whatever the thread count. Coders that code several rows
// together (trellis tiles) rely on every task starting at a multiple of it.
inline constexpr int64_t kBlockLdlqRowsPerTask = 64;

// Codes the k (≤ d) columns from c0 of every row of `w` (whose first row
// is row r0 of the tensor) and returns the errors W_B − Ŵ_B (rows × k).
// Called concurrently for disjoint row blocks.
using BlockCoder =
    std::function<Eigen::MatrixXd(const Eigen::MatrixXd& w, int64_t c0, int64_t k, int64_t r0)>;

// Sweeps `w` (rows × cols) in blocks of `d` columns with `code`. With `u`
// (cols × cols), each block's error moves the later columns (BlockLDLQ);
// null: plain coding. Rows never interact, so fixed blocks of 64 rows run
// on up to `threads` threads (0: all cores) and results do not depend on
// the count. `drifted`, if given (rows × cols), receives the weights each
// block was coded against.
void SweepBlockLdlq(const Eigen::MatrixXd& w, int64_t d, const Eigen::MatrixXd* u, int threads,
                    const BlockCoder& code, Eigen::MatrixXd* drifted);

}  // namespace glvq::cpu
