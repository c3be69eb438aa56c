#include "client/proto_json.h"

#include <string>

#include "absl/strings/escaping.h"
#include "common/jobspec/yaml_proto.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/time_util.h"

namespace glvq::cli {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using google::protobuf::util::TimeUtil;
using json = nlohmann::ordered_json;

json EnumJson(const google::protobuf::EnumValueDescriptor* value) {
  const std::string name = jobspec::YamlEnumName(value);
  return name.empty() ? json(nullptr) : json(name);
}

json WellKnown(const Message& m) {
  const std::string& type = m.GetDescriptor()->full_name();
  if (type == "google.protobuf.Timestamp") {
    return TimeUtil::ToString(static_cast<const google::protobuf::Timestamp&>(m));
  }
  return TimeUtil::ToString(static_cast<const google::protobuf::Duration&>(m));
}

bool IsWellKnown(const Descriptor* d) {
  return d->full_name() == "google.protobuf.Timestamp" ||
         d->full_name() == "google.protobuf.Duration";
}

// Element `index` of a repeated field, or the singular value (index -1).
json Value(const Message& m, const FieldDescriptor* f, int index) {
  const Reflection* r = m.GetReflection();
  const bool rep = index >= 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: return rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f);
    case FieldDescriptor::CPPTYPE_INT64: return rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f);
    case FieldDescriptor::CPPTYPE_UINT32: return rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f);
    case FieldDescriptor::CPPTYPE_UINT64: return rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f);
    case FieldDescriptor::CPPTYPE_DOUBLE: return rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f);
    case FieldDescriptor::CPPTYPE_FLOAT: return rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f);
    case FieldDescriptor::CPPTYPE_BOOL: return rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f);
    case FieldDescriptor::CPPTYPE_ENUM:
      return EnumJson(rep ? r->GetRepeatedEnum(m, f, index) : r->GetEnum(m, f));
    case FieldDescriptor::CPPTYPE_STRING: {
      const std::string s = rep ? r->GetRepeatedString(m, f, index) : r->GetString(m, f);
      return f->type() == FieldDescriptor::TYPE_BYTES ? json(absl::Base64Escape(s)) : json(s);
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      const Message& sub = rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f);
      return IsWellKnown(sub.GetDescriptor()) ? WellKnown(sub) : ProtoJson(sub);
    }
  }
  return nullptr;
}

// A map field as an object keyed by its keys' text.
json MapJson(const Message& m, const FieldDescriptor* f) {
  json out = json::object();
  const Reflection* r = m.GetReflection();
  const FieldDescriptor* key = f->message_type()->map_key();
  const FieldDescriptor* value = f->message_type()->map_value();
  for (int i = 0; i < r->FieldSize(m, f); ++i) {
    const Message& entry = r->GetRepeatedMessage(m, f, i);
    const json k = Value(entry, key, -1);
    out[k.is_string() ? k.get<std::string>() : k.dump()] = Value(entry, value, -1);
  }
  return out;
}

}  // namespace

json ProtoJson(const Message& m) {
  json out = json::object();
  const Descriptor* d = m.GetDescriptor();
  const Reflection* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_map()) {
      out[f->json_name()] = MapJson(m, f);
    } else if (f->is_repeated()) {
      json list = json::array();
      for (int j = 0; j < r->FieldSize(m, f); ++j) list.push_back(Value(m, f, j));
      out[f->json_name()] = std::move(list);
    } else if (f->containing_oneof() != nullptr || f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (r->HasField(m, f)) out[f->json_name()] = Value(m, f, -1);
    } else {
      out[f->json_name()] = Value(m, f, -1);
    }
  }
  return out;
}

}  // namespace glvq::cli
