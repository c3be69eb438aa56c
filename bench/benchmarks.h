// Subcommands of glvq-bench. Each benchmark lives in its own file and adds
// itself to the program with one Register* call in main.cc.
#pragma once

#include "CLI/CLI.hpp"

namespace glvq::bench {

// `pack`: bit packing / unpacking throughput per code width (pack_bench.cc).
void RegisterPackBench(CLI::App& app);
// `quality`: quality vs bits, every method and source (quality_bench.cc).
void RegisterQualityBench(CLI::App& app);
// `speed`: quantization throughput per method, one core and all cores.
void RegisterSpeedBench(CLI::App& app);
// `model`: model-level quality of every method on the fixture (model_bench.cc).
void RegisterModelBench(CLI::App& app);
// `scaling`: the service on loopback: CPU workers, coordinator capacity
// with bench-engine workers, streaming (scaling_bench.cc).
void RegisterScalingBench(CLI::App& app);
// `chaos`: a job while workers and the coordinator are killed; the output
// must match a clean run's (chaos_bench.cc).
void RegisterChaosBench(CLI::App& app);
// `load`: the coordinator's RSS and unary RPC latency under many WatchJob
// streams and workers (load_bench.cc).
void RegisterLoadBench(CLI::App& app);
// `shapes`: GLVQ over a synthetic model with Llama-2 shapes on the worker's
// backend: time, M weights/s, bandwidth against the roofline (shapes_bench.cc).
void RegisterShapesBench(CLI::App& app);
// glvq-bench decode: batch-1 GEMV from packed weights vs dense bf16/f32.
void RegisterDecodeBench(CLI::App& app);
// pipeline: CPU seconds of quantizing a model by stage, per method.
void RegisterPipelineBench(CLI::App& app);

}  // namespace glvq::bench
