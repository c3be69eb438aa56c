#include "coordinator/fingerprint.h"

#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/base/crc32c.h"
#include "common/base/status_macros.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace glvq::coordinator {
namespace {

absl::StatusOr<uint32_t> HeaderCrc(const SafetensorsFile& file) {
  std::ifstream in(file.path(), std::ios::binary);
  std::string head(file.header().data_offset, '\0');
  if (!in.read(head.data(), static_cast<std::streamsize>(head.size()))) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read the header of ", file.path().string()));
  }
  return Crc32c(std::as_bytes(std::span(head.data(), head.size())));
}

absl::Status AddFiles(const SafetensorsModel& model, v1::InputFingerprint* fp) {
  for (const auto& file : model.files()) {
    v1::FileFingerprint* f = fp->add_files();
    f->set_path(file->path().string());
    f->set_size(file->file_size());
    ASSIGN_OR_RETURN(const uint32_t crc, HeaderCrc(*file));
    f->set_header_crc32c(crc);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::InputFingerprint> Fingerprint(const v1::JobSpec& spec,
                                                 const jobspec::JobInputs& inputs) {
  v1::InputFingerprint fp;
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    spec.SerializeToCodedStream(&coded);
  }
  fp.set_spec_crc32c(Crc32c(std::as_bytes(std::span(bytes.data(), bytes.size()))));
  RETURN_IF_ERROR(AddFiles(inputs.model, &fp));
  if (inputs.hessians) RETURN_IF_ERROR(AddFiles(*inputs.hessians, &fp));
  return fp;
}

std::string FingerprintDifference(const v1::InputFingerprint& before,
                                  const v1::InputFingerprint& now) {
  if (before.spec_crc32c() != now.spec_crc32c()) return "the job spec changed";
  std::map<std::string, const v1::FileFingerprint*> current;
  for (const auto& f : now.files()) current[f.path()] = &f;
  for (const auto& f : before.files()) {
    const auto it = current.find(f.path());
    if (it == current.end()) return absl::StrCat(f.path(), " is no longer an input");
    if (it->second->size() != f.size()) {
      return absl::StrCat(f.path(), " changed size (", f.size(), " -> ", it->second->size(),
                          " bytes)");
    }
    if (it->second->header_crc32c() != f.header_crc32c()) {
      return absl::StrCat(f.path(), " has a different safetensors header");
    }
  }
  if (before.files_size() != now.files_size()) return "the set of input files changed";
  return "";
}

}  // namespace glvq::coordinator
