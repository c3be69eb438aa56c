#include "common/metrics/families.h"

#include <cctype>

namespace glvq::metrics {

prometheus::MetricFamily Family(const std::string& name, const std::string& help,
                                prometheus::MetricType type) {
  prometheus::MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = type;
  return family;
}

void AddSample(prometheus::MetricFamily* family, const Labels& labels, double value) {
  prometheus::ClientMetric& m = family->metric.emplace_back();
  for (const auto& [name, label_value] : labels) m.label.push_back({name, label_value});
  if (family->type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
}

prometheus::MetricFamily StateGauge(const std::string& name, const std::string& help,
                                    const std::string& label,
                                    const std::vector<std::string>& values,
                                    const std::string& current) {
  prometheus::MetricFamily family = Family(name, help, prometheus::MetricType::Gauge);
  for (const std::string& v : values) AddSample(&family, {{label, v}}, v == current ? 1 : 0);
  return family;
}

std::string EnumLabel(const std::string& value_name, const std::string& prefix) {
  std::string out = value_name.starts_with(prefix) ? value_name.substr(prefix.size()) : value_name;
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

const char* DirectionLabel(StreamDirection direction) {
  return direction == StreamDirection::kFetch ? "fetch" : "upload";
}

}  // namespace glvq::metrics
