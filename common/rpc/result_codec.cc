#include "common/rpc/result_codec.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "common/base/crc32c.h"
#include "common/base/status_macros.h"
#include "common/base/string_view.h"
#include "common/rpc/chunks.h"
#include "common/rpc/task_io.h"

namespace glvq::rpc {
namespace {

// "<tensor>.glvq.codes" -> "codes"
std::string ComponentSuffix(const std::string& tensor_name) {
  const size_t at = tensor_name.rfind(".glvq.");
  return at == std::string::npos ? tensor_name : tensor_name.substr(at + 6);
}

void FillStats(const quant::RangeResult& r, v1::TaskResultHeader* h) {
  for (const quant::GroupStats& g : r.result.groups) {
    v1::GroupStats* s = h->add_groups();
    s->set_bits(static_cast<uint32_t>(g.bits));
    s->set_mu(g.mu);
    s->set_iterations(static_cast<uint32_t>(g.iterations));
    s->set_proxy_loss(g.proxy_loss);
  }
  if (r.result.tensor.quality) {
    h->mutable_quality()->set_nmse(r.result.tensor.quality->nmse);
    h->mutable_quality()->set_sqnr_db(r.result.tensor.quality->sqnr_db);
    h->mutable_quality()->set_proxy_loss(r.result.tensor.quality->proxy_loss);
    h->mutable_quality()->set_top_error(r.result.tensor.quality->top_error);
  }
  v1::QualitySums* sums = h->mutable_quality_sums();
  sums->set_error(r.sums.error);
  sums->set_reference(r.sums.reference);
  sums->set_proxy_error(r.sums.proxy_error);
  sums->set_proxy_reference(r.sums.proxy_reference);
  sums->set_top_error(r.sums.top_error);
  h->set_payload_bits(r.result.accounting.payload_bits);
}

}  // namespace

EncodedResult EncodeResult(const v1::Task& task, const quant::RangeResult& result) {
  EncodedResult out;
  v1::TaskResultHeader& h = out.header;
  h.set_task_id(task.id());
  h.set_job_id(task.job_id());
  h.set_attempt(task.attempt());
  h.set_method(result.result.tensor.method);
  h.set_dim(static_cast<uint32_t>(result.result.tensor.dim));
  h.set_tile_rows(static_cast<uint32_t>(result.result.tensor.tile_rows));
  for (const TensorToWrite& t : ComponentTensors(result.result.tensor)) {
    v1::ResultComponent* c = h.add_components();
    c->set_name(ComponentSuffix(t.name));
    c->set_dtype(DTypeName(t.dtype));
    for (int64_t d : t.shape) c->add_shape(d);
    c->set_offset(out.payload.size());
    c->set_length(t.data.size());
    c->set_crc32c(Crc32c(t.data));
    out.payload.append(reinterpret_cast<const char*>(t.data.data()), t.data.size());
  }
  h.set_payload_bytes(out.payload.size());
  h.set_payload_crc32c(Crc32c(AsBytes(out.payload)));
  FillStats(result, &h);
  return out;
}

absl::Status CheckPayload(const v1::TaskResultHeader& header, std::string_view payload) {
  const std::string task = header.task_id();
  if (payload.size() != header.payload_bytes()) {
    return absl::DataLossError(absl::StrCat(task, ": payload has ", payload.size(),
                                            " bytes, the header says ", header.payload_bytes()));
  }
  if (const uint32_t crc = Crc32c(AsBytes(payload)); crc != header.payload_crc32c()) {
    return absl::DataLossError(absl::StrCat(task, ": payload CRC32C ", crc,
                                            " does not match the header's ",
                                            header.payload_crc32c()));
  }
  uint64_t at = 0;
  for (const v1::ResultComponent& c : header.components()) {
    if (c.offset() != at || c.length() > payload.size() - at) {
      return absl::DataLossError(absl::StrCat(task, ": component ", c.name(),
                                              " does not continue the payload at byte ", at));
    }
    if (Crc32c(AsBytes(payload.substr(at, c.length()))) != c.crc32c()) {
      return absl::DataLossError(absl::StrCat(task, ": component ", c.name(), " fails its CRC32C"));
    }
    at += c.length();
  }
  if (at != payload.size()) {
    return absl::DataLossError(absl::StrCat(task, ": components cover ", at, " of ",
                                            payload.size(), " payload bytes"));
  }
  return absl::OkStatus();
}

absl::StatusOr<QuantizedTensor> DecodeResult(const v1::Task& task,
                                             const v1::TaskResultHeader& header,
                                             std::string_view payload) {
  RETURN_IF_ERROR(CheckPayload(header, payload));
  const v1::TensorLocation& src = task.source();
  const std::optional<DType> dtype = ParseDType(src.dtype());
  if (src.shape_size() != 2 || !dtype) {
    return absl::InvalidArgumentError(absl::StrCat(task.id(), ": the task's source is not 2-D"));
  }
  const int64_t group_size = task.quantizer().group_size();
  ASSIGN_OR_RETURN(const quant::ColumnSpan span, TaskColumns(task));
  QuantizedTensor meta;
  meta.name = task.tensor();
  meta.method = header.method();
  meta.source_dtype = *dtype;
  meta.rows = src.shape(0);
  meta.cols = span.width();
  meta.group_size = group_size;
  meta.dim = header.dim();
  meta.tile_rows = header.tile_rows() == 0 ? 1 : int64_t{header.tile_rows()};
  meta.quality = TensorQuality{header.quality().nmse(), header.quality().sqnr_db(),
                               header.quality().proxy_loss(), header.quality().top_error()};
  std::map<std::string, TensorView, std::less<>> components;
  for (const v1::ResultComponent& c : header.components()) {
    const std::optional<DType> cd = ParseDType(c.dtype());
    if (!cd || components.contains(c.name())) {
      return absl::InvalidArgumentError(
          absl::StrCat(task.id(), ": component ", c.name(), " is repeated or has dtype ", c.dtype()));
    }
    components[c.name()] = TensorView{
        *cd, {c.shape().begin(), c.shape().end()},
        AsBytes(payload.substr(c.offset(), c.length()))};
  }
  auto t = QuantizedTensorFromComponents(meta, components);
  if (!t.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(task.id(), ": result is not a valid packed range: ", t.status().message()));
  }
  return t;
}

quant::QualitySums SumsOf(const v1::TaskResultHeader& header) {
  const v1::QualitySums& s = header.quality_sums();
  return {s.error(), s.reference(), s.proxy_error(), s.proxy_reference(), s.top_error()};
}

}  // namespace glvq::rpc
