// `glvq-bench shapes` on its tiny model with the CPU engine: every kind of
// linear layer is quantized and reported, and the backend choice behaves
// as the worker's (`cuda` without a usable GPU is refused, not faked).
// Timings are not checked.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/support/test_support.h"

namespace glvq::testing {
namespace {

std::string Bench() { return (BinDir() / "glvq-bench").string(); }

TEST(ShapesBench, TinyModelOnTheCpuEngineReportsEveryKind) {
  if (!std::filesystem::exists(Bench())) GTEST_SKIP() << "glvq-bench not built";
  const CommandResult r = RunCommand(Bench() + " shapes --model tiny --backend cpu --iters 2");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("tiny, 2 of 2 layers, engine cpu"), std::string::npos) << r.out;
  for (const char* kind : {"q ", "k ", "v ", "o ", "gate", "up ", "down"}) {
    EXPECT_NE(r.out.find(std::string("\n") + kind), std::string::npos) << kind << "\n" << r.out;
  }
  EXPECT_NE(r.out.find("total: 0.3 M weights"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("whole model (2 layers)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("extrapolated"), std::string::npos) << r.out;

  const CommandResult one = RunCommand(Bench() + " shapes --model tiny --layers 1 --backend cpu "
                                                 "--iters 2 --no-hessian");
  ASSERT_EQ(one.exit_code, 0) << one.out << one.err;
  EXPECT_NE(one.out.find("1 of 2 layers"), std::string::npos) << one.out;
  EXPECT_NE(one.out.find("(extrapolated)"), std::string::npos) << one.out;
  EXPECT_NE(one.out.find("no Hessian"), std::string::npos) << one.out;
}

TEST(ShapesBench, ScalarBaselinesRunOnTheTinyModel) {
  if (!std::filesystem::exists(Bench())) GTEST_SKIP() << "glvq-bench not built";
  for (const char* method : {"gptq", "rtn"}) {
    const CommandResult r = RunCommand(Bench() + " shapes --model tiny --layers 1 --backend cpu "
                                                 "--method " + method);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find(std::string("engine cpu, ") + method + " 2 bits d=1"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("total: 0.1 M weights"), std::string::npos) << r.out;
  }
  const CommandResult bad = RunCommand(Bench() + " shapes --model tiny --method e8p");
  EXPECT_NE(bad.exit_code, 0) << bad.out;
}

TEST(ShapesBench, CudaWithoutAUsableGpuIsRefused) {
  if (!std::filesystem::exists(Bench())) GTEST_SKIP() << "glvq-bench not built";
  const CommandResult r = RunCommand(Bench() + " shapes --model tiny --backend cuda --iters 1");
  if (r.exit_code == 0) GTEST_SKIP() << "a GPU is usable here";
  EXPECT_NE(r.err.find("no usable GPU"), std::string::npos) << r.err;
  // `speed` chooses its engine the same way (worker/service/engine_backend.h).
  const CommandResult speed = RunCommand(Bench() + " speed --rows 16 --cols 64 --backend cuda");
  EXPECT_EQ(speed.exit_code, 1) << speed.out << speed.err;
  EXPECT_NE(speed.err.find("no usable GPU"), std::string::npos) << speed.err;
}

TEST(SpeedBench, CpuBackendPrintsARowPerMethodAndThreadCount) {
  if (!std::filesystem::exists(Bench())) GTEST_SKIP() << "glvq-bench not built";
  const CommandResult r = RunCommand(Bench() + " speed --rows 16 --cols 64 --json --backend cpu");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* method : {"rtn", "gptq", "glvq", "e8p", "pvq"}) {
    EXPECT_NE(r.out.find(std::string("\"method\":\"") + method + "\""), std::string::npos)
        << method << "\n" << r.out;
  }
  EXPECT_EQ(r.out.find("\"backend\":\"cuda\""), std::string::npos) << r.out;
}

}  // namespace
}  // namespace glvq::testing
