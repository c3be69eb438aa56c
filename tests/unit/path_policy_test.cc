// --allowed-root: job paths confined to the coordinator's roots, with ".."
// and symbolic links resolved before the check.
#include "common/jobspec/path_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/test_support.h"

namespace glvq::jobspec {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;

class PathPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(root_ / "models" / "m");
    fs::create_directories(dir_.path() / "outside" / "secret");
    fs::create_directory_symlink(dir_.path() / "outside", root_ / "escape");
  }
  v1::JobSpec Spec(const fs::path& model, const fs::path& out) const {
    v1::JobSpec spec;
    spec.mutable_model()->set_path(model.string());
    spec.mutable_output()->set_path(out.string());
    return spec;
  }
  absl::Status Check(const v1::JobSpec& spec) const { return CheckPathPolicy(spec, {root_}); }

  testing::ScratchDir dir_;
  fs::path root_ = dir_.path() / "root";
};

TEST_F(PathPolicyTest, PathsInsideARootPass) {
  EXPECT_TRUE(Check(Spec(root_ / "models" / "m", root_ / "out" / "new")).ok());
  EXPECT_TRUE(CheckPathPolicy(Spec("/etc", "/tmp/x"), {}).ok()) << "no roots: no policy";
}

TEST_F(PathPolicyTest, DotDotTraversalIsDenied) {
  const absl::Status s = Check(Spec(root_ / ".." / "outside" / "secret", root_ / "out"));
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(s.message()), HasSubstr("spec.model.path"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("outside the coordinator's allowed roots"));
}

TEST_F(PathPolicyTest, SymlinkEscapeIsDeniedForInputsAndOutputs) {
  absl::Status s = Check(Spec(root_ / "escape" / "secret", root_ / "out"));
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  s = Check(Spec(root_ / "models" / "m", root_ / "escape" / "new-output"));
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(s.message()), HasSubstr("spec.output.path"));
}

TEST_F(PathPolicyTest, CalibrationIsCheckedToo) {
  v1::JobSpec spec = Spec(root_ / "models" / "m", root_ / "out");
  spec.mutable_calibration()->set_hessians((dir_.path() / "outside").string());
  const absl::Status s = Check(spec);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(s.message()), HasSubstr("spec.calibration.hessians"));
}

TEST_F(PathPolicyTest, APrefixThatIsNotADirectoryBoundaryIsDenied) {
  fs::create_directories(dir_.path() / "root-sibling");
  const absl::Status s = Check(Spec(dir_.path() / "root-sibling", root_ / "out"));
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(PathPolicyTest, AnOutputOverlappingTheStateDirIsRefusedEarly) {
  const fs::path state = root_ / "state";
  fs::create_directories(state);
  const auto check = [&](const fs::path& out) {
    return CheckOutputOutsideStateDir(Spec(root_ / "models" / "m", out), state);
  };
  EXPECT_TRUE(check(root_ / "out").ok());
  EXPECT_TRUE(check(root_ / "state-sibling").ok()) << "a name prefix is not a parent";
  for (const fs::path& bad : {state / "out", state, root_, state / ".." / "state" / "x",
                              root_ / "escape" / ".." / "root" / "state" / "y"}) {
    const absl::Status s = check(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(s.message()), HasSubstr("overlaps the coordinator's state dir"));
  }
  EXPECT_TRUE(CheckOutputOutsideStateDir(Spec("/m", state / "out"), "").ok()) << "no state dir";
}

}  // namespace
}  // namespace glvq::jobspec
