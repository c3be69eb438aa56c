#include "coordinator/tensor_selection.h"

#include "absl/strings/str_cat.h"
#include "common/base/string_view.h"
#include "common/tensor/dtype.h"
#include "common/tensor/tensor_view.h"

namespace glvq::coordinator {
namespace {

// Why `e` cannot be quantized, or "" if it can.
std::string NotQuantizable(const TensorEntry& e) {
  if (e.shape.size() != 2 || !IsFloatDType(e.dtype)) {
    return absl::StrCat("not a 2-D float tensor (", DTypeName(e.dtype), " ", ShapeToString(e.shape),
                        ")");
  }
  if (e.shape[0] == 0 || e.shape[1] == 0) {
    return absl::StrCat("empty tensor (", ShapeToString(e.shape), ")");
  }
  return "";
}

bool Quantizable(const TensorEntry& e) { return NotQuantizable(e).empty(); }

}  // namespace

absl::StatusOr<TensorSelectionResult> SelectTensors(const v1::TensorSelection& selection,
                                                    const SafetensorsModel& model) {
  TensorSelectionResult result;
  std::vector<bool> include_used(static_cast<size_t>(selection.include_size()), false);
  for (const std::string& name : model.tensor_names()) {
    if (name.find(".glvq.") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor '", name, "': names containing '.glvq.' are reserved by the packed format"));
    }
    const TensorEntry& entry = *model.Find(name);
    bool included = selection.include().empty();
    for (int i = 0; i < selection.include_size(); ++i) {
      if (GlobMatch(selection.include(i), name)) {
        included = true;
        if (Quantizable(entry)) include_used[static_cast<size_t>(i)] = true;
      }
    }
    if (!included) {
      result.pass_through.push_back({name, "not matched by spec.tensors.include"});
      continue;
    }
    const std::string* excluded_by = nullptr;
    for (const std::string& pattern : selection.exclude()) {
      if (GlobMatch(pattern, name)) {
        excluded_by = &pattern;
        break;
      }
    }
    if (excluded_by != nullptr) {
      result.pass_through.push_back({name, absl::StrCat("excluded by '", *excluded_by, "'")});
    } else if (!Quantizable(entry)) {
      result.pass_through.push_back({name, NotQuantizable(entry)});
    } else {
      result.quantize.push_back(name);
    }
  }
  for (size_t i = 0; i < include_used.size(); ++i) {
    if (!include_used[i]) {
      return absl::InvalidArgumentError(absl::StrCat("spec.tensors.include[", i, "]: pattern '",
                                                     selection.include(static_cast<int>(i)),
                                                     "' matches no 2-D float tensor of the model"));
    }
  }
  if (result.quantize.empty()) {
    return absl::InvalidArgumentError(
        "spec.tensors selects no tensor to quantize (every tensor is excluded or not a 2-D "
        "float tensor)");
  }
  return result;
}

}  // namespace glvq::coordinator
