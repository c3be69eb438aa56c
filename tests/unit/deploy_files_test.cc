// The deployment files under deploy/, checked statically (no Docker, Helm
// or cluster here): the Helm chart's templates parse as YAML once their
// template actions are stripped (tests/unit/static_manifest.h) and hold
// the fields the chart promises, values.yaml satisfies values.schema.json,
// the Dockerfile builds in stages onto a CUDA runtime as a non-root user,
// and the Slurm script drains on the pre-timeout signal.
#include <filesystem>
#include <map>

#include "common/base/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/static_manifest.h"

namespace glvq::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const fs::path kDeploy = fs::path(GLVQ_SOURCE_DIR) / "deploy";
const fs::path kChart = kDeploy / "helm" / "glvq";
constexpr char kStateDir[] = "/var/lib/glvq";

std::string Read(const fs::path& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  EXPECT_TRUE(text.ok()) << path << ": " << text.status().message();
  return text.ok() ? *text : "";
}

// Every template's documents, by kind.
std::multimap<std::string, YAML::Node> LoadTemplates() {
  std::multimap<std::string, YAML::Node> by_kind;
  for (const auto& entry : fs::directory_iterator(kChart / "templates")) {
    if (entry.path().extension() != ".yaml") continue;
    absl::StatusOr<std::string> yaml = StripGoTemplate(Read(entry.path()));
    EXPECT_TRUE(yaml.ok()) << entry.path() << ": " << yaml.status().message();
    if (!yaml.ok()) continue;
    for (const YAML::Node& doc : LoadDocuments(*yaml)) by_kind.emplace(doc["kind"].Scalar(), doc);
  }
  return by_kind;
}

YAML::Node One(const std::multimap<std::string, YAML::Node>& docs, const std::string& kind) {
  EXPECT_EQ(docs.count(kind), 1u) << kind;
  const auto it = docs.find(kind);
  return it == docs.end() ? YAML::Node() : it->second;
}

// Whether every map on the way down `keys` from `root` has the key.
bool Has(const YAML::Node& root, std::initializer_list<const char*> keys) {
  YAML::Node node = root;
  for (const char* key : keys) {
    if (!node.IsMap() || !node[key]) return false;
    node.reset(node[key]);  // rebinds; `node = ...` would overwrite the document
  }
  return true;
}

std::vector<std::string> Names(const YAML::Node& list) {
  std::vector<std::string> names;
  for (const YAML::Node& item : list) names.push_back(item["name"].Scalar());
  return names;
}

std::vector<std::string> Strings(const YAML::Node& list) {
  std::vector<std::string> out;
  for (const YAML::Node& item : list) out.push_back(item.Scalar());
  return out;
}

TEST(StaticManifestTest, StripsActionLinesAndReplacesInlineActions) {
  const std::string text =
      "metadata:\n"
      "  labels:\n"
      "    {{- include \"x.labels\" . | nindent 4 }}\n"
      "    app: {{ .Values.name | quote }}-c\n"
      "{{- if .Values.on }}\n"
      "port: {{ .Values.port }}\n"
      "{{- end }}\n";
  absl::StatusOr<std::string> yaml = StripGoTemplate(text);
  ASSERT_TRUE(yaml.ok()) << yaml.status().message();
  EXPECT_EQ(*yaml,
            "metadata:\n  labels:\n    app: GLVQ_TEMPLATE-c\nport: GLVQ_TEMPLATE\n");
  EXPECT_FALSE(StripGoTemplate("a: {{ .Values\n  .b }}\n").ok());
}

TEST(StaticManifestTest, SchemaCheckFindsMissingKeysWrongTypesAndUnknownKeys) {
  const nlohmann::json schema = nlohmann::json::parse(R"({
    "type": "object", "required": ["a", "b"], "additionalProperties": false,
    "definitions": {"port": {"type": "integer"}},
    "properties": {"a": {"$ref": "#/definitions/port"}, "b": {"type": "string"},
                   "c": {"type": "string", "enum": ["x", "y"]},
                   "d": {"type": "array", "items": {"type": "boolean"}}}})");
  EXPECT_THAT(CheckSchema(YAML::Load("{a: 1, b: '2', c: x, d: [true]}"), schema, schema),
              IsEmpty());
  EXPECT_THAT(CheckSchema(YAML::Load("{a: one, c: z, d: [1], e: 0}"), schema, schema),
              ::testing::UnorderedElementsAre(
                  "a: expected integer, got string", "(values): missing required key 'b'",
                  "c: \"z\" is not one of [\"x\",\"y\"]", "d[0]: expected boolean, got integer",
                  "e: not allowed by the schema"));
}

TEST(HelmChartTest, ChartYamlNamesTheChart) {
  const YAML::Node chart = YAML::LoadFile((kChart / "Chart.yaml").string());
  EXPECT_EQ(chart["apiVersion"].Scalar(), "v2");
  EXPECT_EQ(chart["name"].Scalar(), "glvq");
  EXPECT_FALSE(chart["version"].Scalar().empty());
  EXPECT_FALSE(chart["appVersion"].Scalar().empty());
}

TEST(HelmChartTest, EveryTemplateHasApiVersionKindAndName) {
  int documents = 0;
  for (const auto& [kind, doc] : LoadTemplates()) {
    ++documents;
    EXPECT_FALSE(doc["apiVersion"].Scalar().empty()) << kind;
    EXPECT_FALSE(kind.empty());
    EXPECT_FALSE(doc["metadata"]["name"].Scalar().empty()) << kind;
  }
  EXPECT_EQ(documents, 6);  // deployment, 2 services, pvc, statefulset, servicemonitor
}

TEST(HelmChartTest, CoordinatorServesGrpcAndMetricsWithGrpcProbes) {
  const YAML::Node deployment = One(LoadTemplates(), "Deployment");
  EXPECT_EQ(deployment["spec"]["replicas"].as<int>(), 1);
  EXPECT_EQ(deployment["spec"]["strategy"]["type"].Scalar(), "Recreate");
  const YAML::Node pod = deployment["spec"]["template"]["spec"];
  EXPECT_TRUE(pod["securityContext"]) << "the pod runs as the image's non-root user";
  const YAML::Node container = pod["containers"][0];
  EXPECT_EQ(Strings(container["command"]), std::vector<std::string>{"glvq-coordinator"});
  EXPECT_EQ(Names(container["ports"]), (std::vector<std::string>{"grpc", "metrics"}));
  for (const char* probe : {"startupProbe", "readinessProbe", "livenessProbe"}) {
    EXPECT_TRUE(Has(container, {probe, "grpc", "port"})) << probe << ": not a native gRPC probe";
  }
}

TEST(HelmChartTest, CoordinatorStateDirIsThePersistentVolumeClaim) {
  const auto docs = LoadTemplates();
  const YAML::Node pod = One(docs, "Deployment")["spec"]["template"]["spec"];
  const std::vector<std::string> args = Strings(pod["containers"][0]["args"]);
  const auto flag = std::find(args.begin(), args.end(), "--state-dir");
  ASSERT_NE(flag, args.end());
  ASSERT_NE(flag + 1, args.end());
  EXPECT_EQ(*(flag + 1), kStateDir);
  std::string volume;
  for (const YAML::Node& mount : pod["containers"][0]["volumeMounts"]) {
    if (mount["mountPath"].Scalar() == kStateDir) volume = mount["name"].Scalar();
  }
  ASSERT_FALSE(volume.empty()) << "nothing mounted at the state dir";
  bool from_claim = false;
  for (const YAML::Node& v : pod["volumes"]) {
    if (v["name"].Scalar() == volume) from_claim = Has(v, {"persistentVolumeClaim", "claimName"});
  }
  EXPECT_TRUE(from_claim) << "the state dir volume is not a PersistentVolumeClaim";

  const YAML::Node pvc = One(docs, "PersistentVolumeClaim");
  EXPECT_THAT(pvc["metadata"]["name"].Scalar(), ::testing::EndsWith("-state"));
  EXPECT_EQ(pvc["spec"]["accessModes"].size(), 1u);
  EXPECT_TRUE(Has(pvc, {"spec", "resources", "requests", "storage"}));
}

TEST(HelmChartTest, ServicesNameTheirPorts) {
  std::vector<std::vector<std::string>> ports;
  for (const auto& [kind, doc] : LoadTemplates()) {
    if (kind == "Service") ports.push_back(Names(doc["spec"]["ports"]));
  }
  EXPECT_THAT(ports, ::testing::UnorderedElementsAre(
                         std::vector<std::string>{"grpc", "metrics"},  // coordinator
                         std::vector<std::string>{"metrics"}));        // headless, workers
}

TEST(HelmChartTest, WorkersAreAStatefulSetWithGpuLimits) {
  const YAML::Node set = One(LoadTemplates(), "StatefulSet");
  EXPECT_FALSE(set["spec"]["serviceName"].Scalar().empty());
  EXPECT_EQ(set["spec"]["podManagementPolicy"].Scalar(), "Parallel");
  const YAML::Node pod = set["spec"]["template"]["spec"];
  EXPECT_TRUE(pod["terminationGracePeriodSeconds"]) << "draining needs a grace period";
  const YAML::Node container = pod["containers"][0];
  EXPECT_EQ(Strings(container["command"]), std::vector<std::string>{"glvq-worker"});
  EXPECT_THAT(Strings(container["args"]), Contains("--coordinator"));
  EXPECT_TRUE(Has(container, {"resources", "limits", "nvidia.com/gpu"}));
  EXPECT_EQ(Names(container["ports"]), std::vector<std::string>{"metrics"});
}

TEST(HelmChartTest, ServiceMonitorIsOptionalAndScrapesMetricsPorts) {
  const std::string text = Read(kChart / "templates" / "servicemonitor.yaml");
  EXPECT_EQ(text.rfind("{{- if", 0), 0u) << "the whole file must be guarded";
  EXPECT_THAT(text.substr(0, text.find('\n')), HasSubstr(".Values.metrics.serviceMonitor.enabled"));
  const YAML::Node monitor = One(LoadTemplates(), "ServiceMonitor");
  EXPECT_EQ(monitor["apiVersion"].Scalar(), "monitoring.coreos.com/v1");
  EXPECT_EQ(monitor["spec"]["endpoints"][0]["port"].Scalar(), "metrics");
}

TEST(HelmChartTest, ValuesSatisfyTheSchema) {
  const nlohmann::json schema = nlohmann::json::parse(Read(kChart / "values.schema.json"));
  const YAML::Node values = YAML::LoadFile((kChart / "values.yaml").string());
  EXPECT_THAT(CheckSchema(values, schema, schema), IsEmpty());
  EXPECT_FALSE(schema["required"].empty());

  YAML::Node broken = YAML::Clone(values);
  broken.remove("workers");
  broken["coordinator"]["grpcPort"] = "seventy";
  EXPECT_THAT(CheckSchema(broken, schema, schema),
              ::testing::UnorderedElementsAre("(values): missing required key 'workers'",
                                            "coordinator.grpcPort: expected integer, got string"));
}

TEST(DockerfileTest, BuildsInStagesOntoTheCudaRuntimeAsNonRoot) {
  const std::vector<DockerInstruction> file = ParseDockerfile(Read(kDeploy / "docker" / "Dockerfile"));
  std::vector<std::string> stages;  // FROM arguments
  std::string user, copied;        // of the last stage
  bool entry = false;
  for (const DockerInstruction& i : file) {
    if (i.keyword == "FROM") {
      stages.push_back(i.args);
      user.clear(), copied.clear(), entry = false;
    }
    if (i.keyword == "USER") user = i.args;
    if (i.keyword == "COPY") copied += i.args + " ";
    if (i.keyword == "ENTRYPOINT" || i.keyword == "CMD") entry = true;
  }
  ASSERT_GE(stages.size(), 2u) << "multi-stage build";
  EXPECT_THAT(stages.back(), HasSubstr("nvidia/cuda:"));
  EXPECT_THAT(stages.back(), HasSubstr("-runtime-"));
  EXPECT_THAT(stages.front(), HasSubstr("-devel-"));
  ASSERT_FALSE(user.empty()) << "the runtime stage sets no USER";
  const std::string uid = user.substr(0, user.find(':'));
  EXPECT_NE(uid, "root");
  EXPECT_NE(uid, "0");
  for (const char* binary : {"/glvq ", "/glvq-coordinator ", "/glvq-worker "}) {
    EXPECT_THAT(copied, HasSubstr(binary));
  }
  EXPECT_THAT(copied, HasSubstr("--from=builder"));
  EXPECT_TRUE(entry) << "no ENTRYPOINT or CMD";
}

TEST(SlurmScriptTest, DrainsOnThePreTimeoutSignal) {
  const std::string script = Read(kDeploy / "slurm" / "glvq.sbatch");
  EXPECT_THAT(script, HasSubstr("#SBATCH --signal=B:TERM@"));
  EXPECT_THAT(script, HasSubstr("trap drain TERM"));
  EXPECT_THAT(script, HasSubstr("scancel --signal=TERM"));
  EXPECT_THAT(script, HasSubstr("srun "));
}

}  // namespace
}  // namespace glvq::testing
