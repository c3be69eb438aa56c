#include "common/jobspec/yaml_load.h"

#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/parser.h"

namespace glvq::jobspec {
namespace {

// Records where documents start and ignores everything else.
class DocumentMarks : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;

  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

std::string Where(const std::string& file, const YAML::Mark& mark) {
  return mark.is_null() ? absl::StrCat(file, ": ")
                        : absl::StrCat(file, ":", mark.line + 1, ":", mark.column + 1, ": ");
}

}  // namespace

absl::StatusOr<YAML::Node> LoadSingleDocument(std::string_view text, const std::string& file) {
  try {
    // yaml-cpp 0.7 reports an endless run of empty documents for some
    // malformed texts (a lone ',' as the first token): YAML::LoadAll never
    // returns and eats memory. Look at no more than two documents.
    std::istringstream events{std::string(text)};
    YAML::Parser parser(events);
    DocumentMarks marks;
    for (int i = 0; i < 2 && parser.HandleNextDocument(marks); ++i) {
    }
    if (marks.starts.size() > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(file, marks.starts[1]), "a job file holds exactly one YAML document"));
    }
    YAML::Node node = YAML::Load(std::string(text));
    if (node.IsNull()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ": empty job spec (expected apiVersion, kind, metadata and spec)"));
    }
    return node;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(Where(file, e.mark), e.msg));
  }
}

}  // namespace glvq::jobspec
