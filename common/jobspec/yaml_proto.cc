#include "common/jobspec/yaml_proto.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status_macros.h"
#include "common/base/string_view.h"
#include "common/jobspec/byte_quantity.h"

namespace glvq::jobspec {
namespace {
namespace pb = google::protobuf;

SourcePosition PositionOf(const YAML::Node& node) {
  const YAML::Mark m = node.Mark();
  if (m.is_null()) return {};
  return {m.line + 1, m.column + 1};  // yaml-cpp counts from 0
}

std::string Display(const std::string& path) { return path.empty() ? "the job" : path; }

std::string Join(const std::string& path, const std::string& key) {
  return path.empty() ? key : absl::StrCat(path, ".", key);
}

// Quoted scalars carry the non-specific tag "!"; plain ones "?".
bool IsQuoted(const YAML::Node& node) { return node.Tag() == "!"; }

const char* KindName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

std::string KnownKeys(const pb::Descriptor* d) {
  std::vector<std::string> names;
  for (int i = 0; i < d->field_count(); ++i) names.push_back(d->field(i)->json_name());
  return absl::StrJoin(names, ", ");
}

// What a field takes, for messages.
const char* Expected(const pb::FieldDescriptor* f) {
  if (f->is_repeated()) return "a list";
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_MESSAGE:
      return "a mapping";
    case pb::FieldDescriptor::CPPTYPE_STRING:
      return "a string";
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      return "true or false";
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      return "a number";
    case pb::FieldDescriptor::CPPTYPE_ENUM:
      return "a name";
    default:
      return "an integer";
  }
}

const pb::FieldDescriptor* FindByJsonName(const pb::Descriptor* d, const std::string& key) {
  for (int i = 0; i < d->field_count(); ++i) {
    if (d->field(i)->json_name() == key) return d->field(i);
  }
  return nullptr;
}

class Reader {
 public:
  explicit Reader(SourceMap* source) : source_(source) {}

  absl::Status Message(const YAML::Node& node, const std::string& path, pb::Message* msg) {
    if (!node.IsMap()) {
      return Error(node, path, absl::StrCat("expected a mapping, got ", KindName(node)));
    }
    source_->Set(path, PositionOf(node));
    const pb::Descriptor* d = msg->GetDescriptor();
    std::set<std::string> seen;
    for (const auto& kv : node) {
      const YAML::Node& key = kv.first;
      if (!key.IsScalar()) return Error(key, path, "keys must be plain names");
      const std::string name = key.Scalar();
      if (!seen.insert(name).second) {
        return Error(key, path, absl::StrCat("duplicate key '", name, "'"));
      }
      const pb::FieldDescriptor* field = FindByJsonName(d, name);
      if (field == nullptr) {
        const std::string where = path.empty() ? "at the top level" : absl::StrCat("in ", path);
        return absl::InvalidArgumentError(absl::StrCat(NodePrefix(*source_, key), "unknown key '",
                                                       name, "' ", where, " (known: ", KnownKeys(d),
                                                       ")"));
      }
      if (kv.second.IsNull()) {  // "key:" alone; a null's own mark is the next token's
        return Error(key, Join(path, name),
                     absl::StrCat("missing value (expected ", Expected(field), ")"));
      }
      RETURN_IF_ERROR(Field(kv.second, Join(path, name), msg, field));
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Error(const YAML::Node& node, const std::string& path, std::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat(NodePrefix(*source_, node), Display(path), ": ", Sv(what)));
  }

  absl::Status Field(const YAML::Node& value, const std::string& path, pb::Message* msg,
                     const pb::FieldDescriptor* field) {
    source_->Set(path, PositionOf(value));
    if (!field->is_repeated()) return Single(value, path, msg, field, -1);
    if (!value.IsSequence()) {
      return Error(value, path, absl::StrCat("expected a list, got ", KindName(value)));
    }
    for (size_t i = 0; i < value.size(); ++i) {
      const std::string item_path = absl::StrCat(path, "[", i, "]");
      source_->Set(item_path, PositionOf(value[i]));
      RETURN_IF_ERROR(Single(value[i], item_path, msg, field, static_cast<int>(i)));
    }
    return absl::OkStatus();
  }

  // Sets field (or appends to it when index >= 0) from one YAML value.
  absl::Status Single(const YAML::Node& v, const std::string& path, pb::Message* msg,
                      const pb::FieldDescriptor* f, int index) {
    const pb::Reflection* r = msg->GetReflection();
    const bool add = index >= 0;
    switch (f->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_MESSAGE:
        return Message(v, path, add ? r->AddMessage(msg, f) : r->MutableMessage(msg, f));
      case pb::FieldDescriptor::CPPTYPE_STRING: {
        if (!v.IsScalar()) {
          return Error(v, path, absl::StrCat("expected a string, got ", KindName(v)));
        }
        add ? r->AddString(msg, f, v.Scalar()) : r->SetString(msg, f, v.Scalar());
        return absl::OkStatus();
      }
      case pb::FieldDescriptor::CPPTYPE_BOOL: {
        RETURN_IF_ERROR(Plain(v, path, "true or false"));
        const std::string s = absl::AsciiStrToLower(v.Scalar());
        if (s != "true" && s != "false") {
          return Error(v, path, absl::StrCat("expected true or false, got '", v.Scalar(), "'"));
        }
        add ? r->AddBool(msg, f, s == "true") : r->SetBool(msg, f, s == "true");
        return absl::OkStatus();
      }
      case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      case pb::FieldDescriptor::CPPTYPE_FLOAT: {
        RETURN_IF_ERROR(Plain(v, path, "a number"));
        double d = 0;
        if (!absl::SimpleAtod(v.Scalar(), &d) || !std::isfinite(d)) {
          return Error(v, path, absl::StrCat("expected a finite number, got '", v.Scalar(), "'"));
        }
        if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_FLOAT) {
          const float x = static_cast<float>(d);
          add ? r->AddFloat(msg, f, x) : r->SetFloat(msg, f, x);
        } else {
          add ? r->AddDouble(msg, f, d) : r->SetDouble(msg, f, d);
        }
        return absl::OkStatus();
      }
      case pb::FieldDescriptor::CPPTYPE_INT32:
      case pb::FieldDescriptor::CPPTYPE_INT64:
        return SignedInt(v, path, msg, f, add);
      case pb::FieldDescriptor::CPPTYPE_UINT32:
      case pb::FieldDescriptor::CPPTYPE_UINT64:
        return UnsignedInt(v, path, msg, f, add);
      case pb::FieldDescriptor::CPPTYPE_ENUM: {
        if (!v.IsScalar()) {
          return Error(v, path, absl::StrCat("expected a name, got ", KindName(v)));
        }
        const pb::EnumValueDescriptor* e = FindYamlEnumValue(f->enum_type(), v.Scalar());
        if (e == nullptr) {
          return Error(v, path,
                       absl::StrCat("unknown value '", v.Scalar(),
                                    "' (known: ", YamlEnumNames(f->enum_type()), ")"));
        }
        add ? r->AddEnum(msg, f, e) : r->SetEnum(msg, f, e);
        return absl::OkStatus();
      }
    }
    return Error(v, path, "field type not supported in YAML");
  }

  absl::Status Plain(const YAML::Node& v, const std::string& path, const char* expected) {
    if (!v.IsScalar()) {
      return Error(v, path, absl::StrCat("expected ", expected, ", got ", KindName(v)));
    }
    if (IsQuoted(v)) {
      return Error(v, path,
                   absl::StrCat("expected ", expected, ", got the string \"", v.Scalar(), "\""));
    }
    return absl::OkStatus();
  }

  absl::Status SignedInt(const YAML::Node& v, const std::string& path, pb::Message* msg,
                         const pb::FieldDescriptor* f, bool add) {
    RETURN_IF_ERROR(Plain(v, path, "an integer"));
    int64_t x = 0;
    if (!absl::SimpleAtoi(v.Scalar(), &x)) {
      return Error(v, path, absl::StrCat("expected an integer, got '", v.Scalar(), "'"));
    }
    const pb::Reflection* r = msg->GetReflection();
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT64) {
      add ? r->AddInt64(msg, f, x) : r->SetInt64(msg, f, x);
      return absl::OkStatus();
    }
    if (x < std::numeric_limits<int32_t>::min() || x > std::numeric_limits<int32_t>::max()) {
      return Error(v, path, absl::StrCat("integer ", x, " is out of range"));
    }
    const auto y = static_cast<int32_t>(x);
    add ? r->AddInt32(msg, f, y) : r->SetInt32(msg, f, y);
    return absl::OkStatus();
  }

  absl::Status UnsignedInt(const YAML::Node& v, const std::string& path, pb::Message* msg,
                           const pb::FieldDescriptor* f, bool add) {
    const bool bytes = absl::EndsWith(f->name(), "_bytes");
    RETURN_IF_ERROR(Plain(v, path, bytes ? "a byte count" : "a non-negative integer"));
    uint64_t x = 0;
    if (bytes) {
      absl::StatusOr<uint64_t> q = ParseByteQuantity(v.Scalar());
      if (!q.ok()) return Error(v, path, std::string(q.status().message()));
      x = *q;
    } else if (v.Scalar().find_first_not_of("0123456789") != std::string::npos ||
               !absl::SimpleAtoi(v.Scalar(), &x)) {
      return Error(v, path,
                   absl::StrCat("expected a non-negative integer, got '", v.Scalar(), "'"));
    }
    const pb::Reflection* r = msg->GetReflection();
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_UINT64) {
      add ? r->AddUInt64(msg, f, x) : r->SetUInt64(msg, f, x);
      return absl::OkStatus();
    }
    if (x > std::numeric_limits<uint32_t>::max()) {
      return Error(v, path, absl::StrCat("integer ", x, " is out of range"));
    }
    const auto y = static_cast<uint32_t>(x);
    add ? r->AddUInt32(msg, f, y) : r->SetUInt32(msg, f, y);
    return absl::OkStatus();
  }

  SourceMap* source_;
};

// The prefix the enum's X_UNSPECIFIED value shares with its other values.
std::string_view EnumPrefix(const pb::EnumDescriptor* type) {
  const pb::EnumValueDescriptor* zero = type->FindValueByNumber(0);
  if (zero == nullptr) return {};
  std::string_view name = zero->name();
  constexpr std::string_view kUnspecified = "UNSPECIFIED";
  if (!name.ends_with(kUnspecified)) return {};
  name.remove_suffix(kUnspecified.size());
  return name;
}

}  // namespace

absl::Status YamlToProto(const YAML::Node& node, const std::string& path,
                         google::protobuf::Message* message, SourceMap* source) {
  try {
    return Reader(source).Message(node, path, message);
  } catch (const YAML::Exception& e) {  // yaml-cpp reports misuse by throwing
    return absl::InvalidArgumentError(absl::StrCat(source->file(), ": ", e.what()));
  }
}

std::string YamlEnumName(const pb::EnumValueDescriptor* value) {
  if (value->number() == 0) return "";
  std::string_view name = value->name();
  const std::string_view prefix = EnumPrefix(value->type());
  if (name.starts_with(prefix)) name.remove_prefix(prefix.size());
  std::string out;
  bool upper_next = false;
  for (char c : name) {
    if (c == '_') {
      upper_next = true;
      continue;
    }
    out += upper_next ? absl::ascii_toupper(c) : absl::ascii_tolower(c);
    upper_next = false;
  }
  return out;
}

const pb::EnumValueDescriptor* FindYamlEnumValue(const pb::EnumDescriptor* type,
                                                 std::string_view name) {
  if (name.empty()) return nullptr;
  for (int i = 0; i < type->value_count(); ++i) {
    if (YamlEnumName(type->value(i)) == name) return type->value(i);
  }
  return nullptr;
}

std::string YamlEnumNames(const pb::EnumDescriptor* type) {
  std::vector<std::string> names;
  for (int i = 0; i < type->value_count(); ++i) {
    std::string n = YamlEnumName(type->value(i));
    if (!n.empty()) names.push_back(std::move(n));
  }
  return absl::StrJoin(names, ", ");
}

std::string NodePrefix(const SourceMap& source, const YAML::Node& node) {
  const SourcePosition p = PositionOf(node);
  if (p.line <= 0) return absl::StrCat(source.file(), ": ");
  return absl::StrCat(source.file(), ":", p.line, ":", p.column, ": ");
}

}  // namespace glvq::jobspec
