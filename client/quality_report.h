// The quality report of a packed model, from its manifest: per quantized
// tensor its shape, bits per weight (payload and with side information),
// proxy loss and NMSE (the proxy loss first when the model was calibrated:
// it is what the model feels), SQNR and the worst relative error of the
// tensor's largest weights (TensorQuality::top_error), then the totals.
#pragma once

#include <iosfwd>

#include "common/packed/packed_model.h"
#include "nlohmann/json.hpp"

namespace glvq::cli {

void PrintQualityReport(const PackedModel& model, std::ostream& out);
nlohmann::ordered_json QualityReportJson(const PackedModel& model);

}  // namespace glvq::cli
