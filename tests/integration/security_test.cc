// TLS and token authentication (docs/security.md) against a real
// coordinator on 127.0.0.1: the auth matrix (no token, wrong token, a token
// of the other role), TLS and mTLS with certificates made at test time by
// openssl (including an expired client certificate), the loopback-only
// plaintext rule, and a whole job over TLS + tokens through the binaries.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <mutex>
#include <string>

#include "common/base/file_util.h"
#include "common/rpc/grpc_util.h"
#include "common/rpc/security.h"
#include "coordinator/server.h"
#include "glvq/v1/services.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "tests/support/child_process.h"
#include "tests/support/service_harness.h"
#include "tests/support/test_support.h"

namespace glvq {
namespace {
namespace fs = std::filesystem;
using rpc::ClientSecurity;
using rpc::ServerSecurity;
using testing::ScratchDir;
using ::testing::HasSubstr;

constexpr char kClientToken[] = "client-secret-7f3a9c";
constexpr char kWorkerToken[] = "worker-secret-41d2e8";

// A CA, a server certificate for 127.0.0.1/localhost, a client
// certificate, an expired client certificate, and a second, unrelated CA.
class Pki {
 public:
  explicit Pki(const fs::path& dir) : dir_(dir) {
    MakeCa("ca");
    MakeCa("other-ca");
    MakeCert("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost", 1);
    MakeCert("client", "ca", "subjectAltName=DNS:glvq-client", 1);
    MakeCert("expired", "ca", "subjectAltName=DNS:glvq-client", -1);
  }
  std::string Pem(const std::string& name) const { return (dir_ / (name + ".pem")).string(); }
  std::string Key(const std::string& name) const { return (dir_ / (name + ".key")).string(); }

 private:
  void Run(const std::string& command) {
    const auto r = testing::RunCommand(command);
    ASSERT_EQ(r.exit_code, 0) << command << "\n" << r.err;
  }
  std::string NewKey(const std::string& name) {
    return "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " +
           Key(name);
  }
  void MakeCa(const std::string& name) {
    Run(NewKey(name) + " -x509 -days 2 -subj /CN=" + name + " -out " + Pem(name));
  }
  void MakeCert(const std::string& name, const std::string& ca, const std::string& san,
                int days) {
    const std::string csr = (dir_ / (name + ".csr")).string();
    Run(NewKey(name) + " -subj /CN=" + name + " -addext " + san + " -out " + csr);
    Run("openssl x509 -req -in " + csr + " -CA " + Pem(ca) + " -CAkey " + Key(ca) +
        " -CAcreateserial -copy_extensions copy -days " + std::to_string(days) + " -out " +
        Pem(name));
  }
  fs::path dir_;
};

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::RunCommand("openssl version").exit_code != 0) GTEST_SKIP() << "no openssl";
    testing::WriteFile(dir_.path() / "client.tokens",
                       std::string("# clients\n") + kClientToken + "\n");
    testing::WriteFile(dir_.path() / "worker.tokens", std::string(kWorkerToken) + "\n");
    testing::WriteFile(dir_.path() / "client.token", kClientToken);
    testing::WriteFile(dir_.path() / "worker.token", kWorkerToken);
    testing::WriteFile(dir_.path() / "wrong.token", "not-a-token");
  }

  ServerSecurity Tokens() const {
    ServerSecurity s;
    s.client_token_file = (dir_.path() / "client.tokens").string();
    s.worker_token_file = (dir_.path() / "worker.tokens").string();
    return s;
  }
  std::string TokenFile(const std::string& name) const {
    return (dir_.path() / (name + ".token")).string();
  }

  void Start(const ServerSecurity& security, coordinator::SchedulerOptions options = {}) {
    options.state_dir = dir_.path() / "state";
    auto server = coordinator::CoordinatorServer::Start("127.0.0.1:0", options, security);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }
  std::string Address() const { return "127.0.0.1:" + std::to_string(server_->port()); }

  std::shared_ptr<grpc::Channel> Channel(const ClientSecurity& security) {
    auto channel = rpc::MakeClientChannel(Address(), security);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return channel.ok() ? *channel : nullptr;
  }
  grpc::Status ListJobs(const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext context;
    rpc::SetTimeout(&context, absl::Seconds(10));
    v1::ListJobsResponse response;
    return v1::JobService::NewStub(channel)->ListJobs(&context, {}, &response);
  }
  grpc::Status RegisterWorker(const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext context;
    rpc::SetTimeout(&context, absl::Seconds(10));
    v1::RegisterWorkerRequest request;
    request.set_hostname("security-test");
    v1::RegisterWorkerResponse response;
    return v1::WorkerService::NewStub(channel)->RegisterWorker(&context, request, &response);
  }

  ScratchDir dir_;
  std::unique_ptr<coordinator::CoordinatorServer> server_;
};

TEST_F(SecurityTest, TokenMatrix) {
  Start(Tokens());
  ClientSecurity none, wrong, client, worker;
  wrong.token_file = TokenFile("wrong");
  client.token_file = TokenFile("client");
  worker.token_file = TokenFile("worker");

  grpc::Status s = ListJobs(Channel(none));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(s.error_message(), HasSubstr("missing bearer token"));
  EXPECT_EQ(RegisterWorker(Channel(none)).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  s = ListJobs(Channel(wrong));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(s.error_message(), HasSubstr("unknown bearer token"));

  s = RegisterWorker(Channel(client));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("client token cannot call the worker service"));
  EXPECT_EQ(ListJobs(Channel(worker)).error_code(), grpc::StatusCode::PERMISSION_DENIED);

  EXPECT_TRUE(ListJobs(Channel(client)).ok());
  EXPECT_TRUE(RegisterWorker(Channel(worker)).ok());
  // Messages never echo a token.
  EXPECT_THAT(ListJobs(Channel(wrong)).error_message(), ::testing::Not(HasSubstr("not-a-token")));
}

TEST_F(SecurityTest, HealthNeedsNoToken) {
  Start(Tokens());
  grpc::ClientContext context;
  rpc::SetTimeout(&context, absl::Seconds(10));
  // grpc.health.v1.Health/Check with an empty HealthCheckRequest.
  grpc::Slice empty{std::string()};
  grpc::ByteBuffer request(&empty, 1), response;
  grpc::GenericStub stub(Channel({}));
  grpc::Status status;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", {}, &request, &response,
                 [&](grpc::Status s) {
                   std::lock_guard lock(mu);
                   status = s;
                   done = true;
                   cv.notify_all();
                 });
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return done; });
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(SecurityTest, TlsRoundTripAndRejections) {
  Pki pki(dir_.path());
  ServerSecurity server = Tokens();
  server.tls_cert_file = pki.Pem("server");
  server.tls_key_file = pki.Key("server");
  Start(server);

  ClientSecurity tls;
  tls.tls_ca_file = pki.Pem("ca");
  tls.token_file = TokenFile("client");
  EXPECT_TRUE(ListJobs(Channel(tls)).ok());

  ClientSecurity plaintext;
  plaintext.token_file = TokenFile("client");
  EXPECT_EQ(ListJobs(Channel(plaintext)).error_code(), grpc::StatusCode::UNAVAILABLE);

  ClientSecurity wrong_ca = tls;
  wrong_ca.tls_ca_file = pki.Pem("other-ca");
  EXPECT_EQ(ListJobs(Channel(wrong_ca)).error_code(), grpc::StatusCode::UNAVAILABLE);

  // TLS does not replace tokens: still UNAUTHENTICATED without one.
  ClientSecurity no_token = tls;
  no_token.token_file.clear();
  EXPECT_EQ(ListJobs(Channel(no_token)).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(SecurityTest, MutualTlsRequiresAValidClientCertificate) {
  Pki pki(dir_.path());
  ServerSecurity server = Tokens();
  server.tls_cert_file = pki.Pem("server");
  server.tls_key_file = pki.Key("server");
  server.tls_client_ca_file = pki.Pem("ca");
  Start(server);

  ClientSecurity tls;
  tls.tls_ca_file = pki.Pem("ca");
  tls.token_file = TokenFile("client");
  EXPECT_EQ(ListJobs(Channel(tls)).error_code(), grpc::StatusCode::UNAVAILABLE);

  ClientSecurity mtls = tls;
  mtls.tls_cert_file = pki.Pem("client");
  mtls.tls_key_file = pki.Key("client");
  EXPECT_TRUE(ListJobs(Channel(mtls)).ok());

  ClientSecurity expired = tls;
  expired.tls_cert_file = pki.Pem("expired");
  expired.tls_key_file = pki.Key("expired");
  EXPECT_EQ(ListJobs(Channel(expired)).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(SecurityTest, PlaintextOnlyOnLoopbackUnlessInsecure) {
  ServerSecurity server;
  auto refused = rpc::MakeServerCredentials(server, "0.0.0.0:7070");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("--insecure"));
  server = Tokens();
  refused = rpc::MakeServerCredentials(server, "0.0.0.0:7070");
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("--tls-cert"));
  server.insecure = true;
  EXPECT_TRUE(rpc::MakeServerCredentials(server, "0.0.0.0:7070").ok());
  EXPECT_TRUE(rpc::MakeServerCredentials({}, "127.0.0.1:0").ok());

  ClientSecurity client;
  auto channel = rpc::MakeClientChannel("glvq.example.org:7070", client);
  ASSERT_FALSE(channel.ok());
  EXPECT_THAT(std::string(channel.status().message()), HasSubstr("--insecure"));
  client.insecure = true;
  EXPECT_TRUE(rpc::MakeClientChannel("glvq.example.org:7070", client).ok());
  EXPECT_TRUE(rpc::MakeClientChannel("localhost:7070", {}).ok());
}

TEST_F(SecurityTest, BadTokenFilesAreRefused) {
  testing::WriteFile(dir_.path() / "empty.tokens", "# nothing\n\n");
  ServerSecurity s = Tokens();
  s.worker_token_file = (dir_.path() / "empty.tokens").string();
  auto auth = rpc::Authenticator::Load(s);
  ASSERT_FALSE(auth.ok());
  EXPECT_THAT(std::string(auth.status().message()), HasSubstr("holds no token"));

  s = Tokens();
  s.worker_token_file = s.client_token_file;
  auth = rpc::Authenticator::Load(s);
  ASSERT_FALSE(auth.ok());
  EXPECT_EQ(auth.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(auth.status().message()), ::testing::Not(HasSubstr(kClientToken)));

  s = Tokens();
  s.worker_token_file.clear();
  EXPECT_EQ(rpc::Authenticator::Load(s).status().code(), absl::StatusCode::kFailedPrecondition);
}

grpc::Status Submit(v1::JobService::Stub& stub, const v1::QuantizationJob& job) {
  grpc::ClientContext context;
  rpc::SetTimeout(&context, absl::Seconds(30));
  v1::SubmitJobRequest request;
  *request.mutable_job() = job;
  v1::SubmitJobResponse response;
  return stub.SubmitJob(&context, request, &response);
}

// Each limit of docs/security.md's table that a client can reach, once.
TEST_F(SecurityTest, ServiceLimitsAreEnforced) {
  if (!fs::exists(testing::Stories260KDir())) GTEST_SKIP() << "fixtures missing";
  coordinator::SchedulerOptions options;
  options.limits = {.max_tasks_per_job = 1000, .max_active_jobs = 1, .max_watchers = 1};
  Start({}, options);
  auto stub = v1::JobService::NewStub(Channel({}));
  const fs::path model = testing::Stories260KDir();

  v1::QuantizationJob job = testing::Stories260KJob(model, dir_.path() / "a");
  ASSERT_TRUE(Submit(*stub, job).ok());
  grpc::Status s = Submit(*stub, testing::Stories260KJob(model, dir_.path() / "b"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("--max-active-jobs"));

  v1::ListJobsResponse jobs;
  {
    grpc::ClientContext context;
    rpc::SetTimeout(&context, absl::Seconds(10));
    ASSERT_TRUE(stub->ListJobs(&context, {}, &jobs).ok());
    ASSERT_EQ(jobs.jobs_size(), 1);
  }
  v1::WatchJobRequest watch;
  watch.set_job_id(jobs.jobs(0).id());
  grpc::ClientContext first_context, second_context;
  rpc::SetTimeout(&first_context, absl::Seconds(30));
  rpc::SetTimeout(&second_context, absl::Seconds(30));
  auto first = stub->WatchJob(&first_context, watch);
  v1::JobEvent event;
  ASSERT_TRUE(first->Read(&event));  // the first watcher is being served
  auto second = stub->WatchJob(&second_context, watch);
  EXPECT_FALSE(second->Read(&event));
  s = second->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("--max-watchers"));
  first_context.TryCancel();
}

TEST_F(SecurityTest, TooManyTasksAndPathsOutsideTheRootsAreRefused) {
  if (!fs::exists(testing::Stories260KDir())) GTEST_SKIP() << "fixtures missing";
  coordinator::SchedulerOptions options;
  options.limits.max_tasks_per_job = 2;
  options.allowed_roots = {dir_.path()};
  Start({}, options);
  auto stub = v1::JobService::NewStub(Channel({}));
  // The fixture lies outside the allowed root.
  grpc::Status s =
      Submit(*stub, testing::Stories260KJob(testing::Stories260KDir(), dir_.path() / "o"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("allowed roots"));

  fs::create_directory_symlink(testing::Stories260KDir(), dir_.path() / "model-link");
  s = Submit(*stub, testing::Stories260KJob(dir_.path() / "model-link", dir_.path() / "o"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << "a symlink must not escape";

  fs::copy(testing::Stories260KDir(), dir_.path() / "model");
  s = Submit(*stub, testing::Stories260KJob(dir_.path() / "model", dir_.path() / "o"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("--max-tasks-per-job"));
  EXPECT_FALSE(fs::exists(dir_.path() / "o"));
}

TEST_F(SecurityTest, ASecondCoordinatorCannotTakeThePortOrTheStateDir) {
  Start(ServerSecurity{});
  // The same port (gRPC would share it with SO_REUSEPORT and split requests).
  coordinator::SchedulerOptions other;
  other.state_dir = dir_.path() / "state2";
  auto same_port = coordinator::CoordinatorServer::Start(Address(), other, ServerSecurity{});
  EXPECT_FALSE(same_port.ok());
  EXPECT_THAT(std::string(same_port.status().message()), HasSubstr("cannot listen"));
  // The same state dir, on another port: the live journal is locked.
  coordinator::SchedulerOptions same_dir;
  same_dir.state_dir = dir_.path() / "state";
  auto locked = coordinator::CoordinatorServer::Start("127.0.0.1:0", same_dir, ServerSecurity{});
  ASSERT_FALSE(locked.ok());
  EXPECT_EQ(locked.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(locked.status().message()),
              HasSubstr(absl::StrCat("in use by another coordinator (pid ", ::getpid(), ")")));
  EXPECT_EQ(ListJobs(Channel(ClientSecurity{})).error_code(), grpc::StatusCode::OK);
  server_.reset();  // released with the first coordinator
  auto after = coordinator::CoordinatorServer::Start("127.0.0.1:0", same_dir, ServerSecurity{});
  EXPECT_TRUE(after.ok()) << after.status();
}

TEST(ConstantTimeEquals, ComparesWholeStrings) {
  EXPECT_TRUE(rpc::ConstantTimeEquals("abc", "abc"));
  EXPECT_TRUE(rpc::ConstantTimeEquals("", ""));
  EXPECT_FALSE(rpc::ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(rpc::ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(rpc::ConstantTimeEquals("", "a"));
  EXPECT_FALSE(rpc::ConstantTimeEquals(std::string_view("ab\0", 3), "ab"));
}

// The binaries wired together: coordinator with TLS and both token files,
// a worker with its token, `glvq submit --wait` with the client token.
TEST_F(SecurityTest, JobOverTlsWithTokensThroughTheBinaries) {
  if (!fs::exists(testing::Stories260KDir())) GTEST_SKIP() << "fixtures missing";
  Pki pki(dir_.path());
  const std::string bin = testing::BinDir().string();
  const fs::path log = dir_.path() / "service.log";
  const auto coordinator = testing::StartChild(
      {bin + "/glvq-coordinator", "--listen", "127.0.0.1:0", "--state-dir",
       (dir_.path() / "state").string(), "--port-file", (dir_.path() / "port").string(),
       "--tls-cert", pki.Pem("server"), "--tls-key", pki.Key("server"), "--client-token-file",
       (dir_.path() / "client.tokens").string(), "--worker-token-file",
       (dir_.path() / "worker.tokens").string()},
      log);
  const int port = testing::WaitForPortFile(dir_.path() / "port");
  ASSERT_GT(port, 0);
  // An IP, not "localhost": c-ares (gRPC's resolver) leaks 10 bytes per
  // name lookup, which LeakSanitizer turns into exit 1 in the asan build.
  const std::string address = "127.0.0.1:" + std::to_string(port);
  const auto worker =
      testing::StartChild({bin + "/glvq-worker", "--coordinator", address, "--tls-ca",
                           pki.Pem("ca"), "--token-file", TokenFile("worker")},
                          log);
  const fs::path job = dir_.path() / "job.yaml";
  testing::WriteJobYaml(testing::Stories260KJob(testing::Stories260KDir(), dir_.path() / "out"),
                        job);
  const std::string submit = bin + "/glvq submit --wait --coordinator " + address +
                             " --tls-ca " + pki.Pem("ca") + " " + job.string();
  auto r = testing::RunCommand(submit + " --token-file " + TokenFile("worker"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("PERMISSION_DENIED"));
  r = testing::RunCommand(submit + " --token-file " + TokenFile("client"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir_.path() / "out" / "glvq_manifest.json"));

  worker->Signal(SIGTERM);
  EXPECT_EQ(worker->Wait(), 0);
  coordinator->Signal(SIGTERM);
  EXPECT_EQ(coordinator->Wait(), 0);
  const std::string logs = ReadFileToString(log).value_or("");
  EXPECT_THAT(logs, ::testing::Not(HasSubstr(kClientToken)));
  EXPECT_THAT(logs, ::testing::Not(HasSubstr(kWorkerToken)));
}

}  // namespace
}  // namespace glvq
