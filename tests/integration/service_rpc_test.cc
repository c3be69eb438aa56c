// The transport limits every glvq channel and server share
// (common/rpc/grpc_util.h): a message over kMaxMessageBytes fails with
// RESOURCE_EXHAUSTED on whichever side meets it first, one just under it
// goes through, and the coordinator keeps serving afterwards; errors that
// quote huge input stay short.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "common/base/one_line.h"
#include "common/rpc/grpc_util.h"
#include "tests/support/service_harness.h"
#include "tests/support/test_support.h"

namespace glvq::testing {
namespace {

using ::testing::HasSubstr;

// A SubmitJob request of about `bytes` bytes (an absurd job name).
v1::SubmitJobRequest RequestOfSize(size_t bytes) {
  v1::SubmitJobRequest request;
  request.mutable_job()->mutable_metadata()->set_name(std::string(bytes, 'x'));
  return request;
}

grpc::Status Submit(const std::shared_ptr<grpc::Channel>& channel,
                    const v1::SubmitJobRequest& request) {
  auto stub = v1::JobService::NewStub(channel);
  grpc::ClientContext context;
  rpc::SetTimeout(&context, absl::Seconds(30));
  v1::SubmitJobResponse response;
  return stub->SubmitJob(&context, request, &response);
}

class TransportLimitsTest : public ::testing::Test {
 protected:
  ScratchDir dir_;
  ServiceHarness harness_{dir_ / "state"};
};

TEST_F(TransportLimitsTest, AClientRefusesToSendAMessageOverTheLimit) {
  const grpc::Status s =
      Submit(rpc::MakeChannel(harness_.address()), RequestOfSize(rpc::kMaxMessageBytes));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("larger than max"));
  EXPECT_THAT(s.error_message(), HasSubstr(std::to_string(rpc::kMaxMessageBytes)));
}

TEST_F(TransportLimitsTest, TheCoordinatorRefusesAMessageOverTheLimitAndKeepsServing) {
  // A client without glvq's send limit: the server's receive limit holds.
  grpc::ChannelArguments unlimited = rpc::ChannelArgs();
  unlimited.SetMaxSendMessageSize(-1);
  const grpc::Status s = Submit(
      grpc::CreateCustomChannel(harness_.address(), grpc::InsecureChannelCredentials(), unlimited),
      RequestOfSize(rpc::kMaxMessageBytes));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("larger than max"));

  auto job = harness_.Get("no-such-job");
  EXPECT_EQ(job.status().code(), absl::StatusCode::kNotFound) << job.status();
}

TEST_F(TransportLimitsTest, AMessageJustUnderTheLimitReachesTheCoordinator) {
  // It arrives and is judged on its content: a job spec it is not.
  const grpc::Status s =
      Submit(rpc::MakeChannel(harness_.address()), RequestOfSize(rpc::kMaxMessageBytes - 1024));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("apiVersion"));
}

// An 8 MiB name passes the transport limit and fails validation. The status
// quotes it, so unbounded it would overflow gRPC's metadata limit and the
// client would see a transport error instead of the reason.
TEST_F(TransportLimitsTest, AHugeNameIsQuotedShortInTheError) {
  v1::SubmitJobRequest request;
  *request.mutable_job() = Stories260KJob(dir_ / "model", dir_ / "out", 0);
  request.mutable_job()->mutable_metadata()->set_name(std::string(8 << 20, 'N'));
  const grpc::Status s = Submit(rpc::MakeChannel(harness_.address()), request);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message().substr(0, 200);
  EXPECT_THAT(s.error_message(), HasSubstr("is not a DNS-1123 label"));
  EXPECT_THAT(s.error_message(), HasSubstr("more bytes)'"));
  EXPECT_LE(s.error_message().size(), kMaxMessageBytes);
}

}  // namespace
}  // namespace glvq::testing
