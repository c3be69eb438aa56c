// deploy/grafana/glvq-job.json: a classic Grafana dashboard with a
// Prometheus datasource variable and a job selector, whose every query uses
// only metrics the coordinator and the workers export.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "nlohmann/json.hpp"
#include "tests/support/metrics_support.h"
#include "tests/support/test_support.h"

namespace glvq::testing {
namespace {

using json = nlohmann::json;

json LoadDashboard() {
  std::ifstream in(std::string(GLVQ_SOURCE_DIR) + "/deploy/grafana/glvq-job.json");
  return json::parse(in, nullptr, /*allow_exceptions=*/false);
}

// Every panel, rows' nested panels included.
std::vector<json> AllPanels(const json& dashboard) {
  std::vector<json> out;
  for (const json& p : dashboard.value("panels", json::array())) {
    out.push_back(p);
    for (const json& nested : p.value("panels", json::array())) out.push_back(nested);
  }
  return out;
}

// The family a sample name belongs to: histograms export _bucket, _sum, _count.
std::string FamilyOf(const std::string& name, const Exposition& e) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    if (!name.ends_with(suffix)) continue;
    const std::string base = name.substr(0, name.size() - std::string(suffix).size());
    const auto it = e.types.find(base);
    if (it != e.types.end() && it->second == "histogram") return base;
  }
  return name;
}

TEST(GrafanaDashboard, HasADatasourceVariableAndAJobSelector) {
  const json d = LoadDashboard();
  ASSERT_TRUE(d.is_object()) << "missing or invalid JSON";
  EXPECT_FALSE(d.value("uid", "").empty());
  EXPECT_FALSE(d.value("title", "").empty());
  EXPECT_GE(d.value("schemaVersion", 0), 30);
  const json& vars = d["templating"]["list"];
  ASSERT_TRUE(vars.is_array());
  bool datasource = false, job = false;
  for (const json& v : vars) {
    if (v.value("type", "") == "datasource" && v.value("query", "") == "prometheus") {
      datasource = v.value("name", "") == "datasource";
    }
    if (v.value("type", "") == "query" && v.value("name", "") == "job") {
      job = v.value("definition", "").find("job_id") != std::string::npos;
      EXPECT_EQ(v["datasource"].value("uid", ""), "${datasource}");
    }
  }
  EXPECT_TRUE(datasource);
  EXPECT_TRUE(job);
}

TEST(GrafanaDashboard, PanelsAreWellFormed) {
  const json d = LoadDashboard();
  std::set<int> ids;
  int queries = 0;
  for (const json& p : AllPanels(d)) {
    EXPECT_TRUE(ids.insert(p.value("id", -1)).second) << "duplicate id " << p.value("id", -1);
    EXPECT_FALSE(p.value("title", "").empty()) << p.dump();
    EXPECT_TRUE(p.contains("gridPos")) << p.value("title", "");
    if (p.value("type", "") == "row") continue;
    EXPECT_EQ(p["datasource"].value("uid", ""), "${datasource}") << p.value("title", "");
    ASSERT_TRUE(p["targets"].is_array() && !p["targets"].empty()) << p.value("title", "");
    for (const json& t : p["targets"]) {
      EXPECT_FALSE(GlvqMetricNames(t.value("expr", "")).empty()) << p.value("title", "");
      ++queries;
    }
  }
  EXPECT_GE(queries, 10);
}

TEST(GrafanaDashboard, QueriesUseOnlyExportedMetrics) {
  const json d = LoadDashboard();
  std::set<std::string> used;
  for (const json& p : AllPanels(d)) {
    for (const json& t : p.value("targets", json::array())) {
      used.merge(GlvqMetricNames(t.value("expr", "")));
    }
  }
  for (const json& v : d["templating"]["list"]) used.merge(GlvqMetricNames(v.value("definition", "")));

  ScratchDir dir;
  const Exposition e = ScrapeIdleService(dir / "state");
  std::set<std::string> families;
  for (const std::string& name : used) {
    const std::string family = FamilyOf(name, e);
    EXPECT_TRUE(e.types.contains(family)) << name << " is not exported";
    // A histogram's own name has no series: only _bucket, _sum, _count do.
    EXPECT_TRUE(family != name || e.types.at(name) != "histogram") << name;
    families.insert(family);
  }
  // What the dashboard must show (docs/operations.md, "Dashboard").
  for (const char* wanted :
       {"glvq_job_tasks_done_total", "glvq_job_weights_done_total", "glvq_job_weights_planned",
        "glvq_worker_state", "glvq_workers", "glvq_task_duration_seconds",
        "glvq_task_proxy_loss_ratio", "glvq_task_sqnr_decibels", "glvq_job_bits_per_weight",
        "glvq_task_failures_total", "glvq_task_retries_total", "glvq_lease_expiries_total",
        "glvq_stream_bytes_total", "glvq_worker_gpu_memory_used_bytes"}) {
    EXPECT_TRUE(families.contains(wanted)) << wanted << " is not on the dashboard";
  }
}

}  // namespace
}  // namespace glvq::testing
