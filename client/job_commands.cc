// `glvq validate job.yaml` and `glvq plan job.yaml`: everything a job spec
// can be checked for before anything runs, offline — syntax, keys, values,
// the model, the output path, and the task plan. Neither writes anything.
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "client/plan_timing.h"
#include "client/proto_json.h"
#include "client/service_client.h"
#include "common/base/machine.h"
#include "common/base/one_line.h"
#include "common/base/status_macros.h"
#include "common/jobspec/byte_quantity.h"
#include "common/jobspec/job_spec.h"
#include "coordinator/planner.h"
#include "nlohmann/json.hpp"

namespace glvq::cli {
namespace {
using json = nlohmann::ordered_json;

struct CheckedJob {
  jobspec::ParsedJob parsed;
  coordinator::Plan plan;
};

// Parse, check the filesystem, plan. `max_task_memory` overrides the spec's
// workers.maxTaskMemoryBytes.
absl::StatusOr<CheckedJob> CheckJob(const std::string& file,
                                    std::optional<uint64_t> max_task_memory) {
  CheckedJob c;
  ASSIGN_OR_RETURN(c.parsed, jobspec::LoadJobFile(file));
  v1::JobSpec& spec = *c.parsed.job.mutable_spec();
  if (max_task_memory) spec.mutable_workers()->set_max_task_memory_bytes(*max_task_memory);
  ASSIGN_OR_RETURN(jobspec::JobInputs inputs, jobspec::CheckJobEnvironment(spec, &c.parsed.source));
  absl::StatusOr<coordinator::Plan> plan = coordinator::PlanJob(spec, inputs);
  if (!plan.ok()) {
    // Planner messages about a field start with its path ("spec.tensors.
    // include[0]: ..."): point at it in the file.
    const std::string message(plan.status().message());
    const size_t colon = message.find(": ");
    const bool about_field = message.starts_with("spec.") && colon != std::string::npos;
    const std::string prefix =
        about_field ? c.parsed.source.Prefix(message.substr(0, colon)) : absl::StrCat(file, ": ");
    return absl::Status(plan.status().code(), prefix + message);
  }
  c.plan = *std::move(plan);
  return c;
}

// "<message> [CODE]" on one line (glvq::ErrorLine), as validate and plan print it.
std::string LineWithCode(const absl::Status& s) {
  return absl::StrCat(glvq::ErrorLine(s), " [", absl::StatusCodeToString(s.code()), "]");
}

json ErrorJson(const std::string& file, const absl::Status& s) {
  return {{"file", file},
          {"valid", false},
          {"code", absl::StatusCodeToString(s.code())},
          {"message", std::string(s.message())}};
}


struct Args {
  std::string file;
  std::string output = "text";
  std::string max_task_memory;
  bool no_measure = false;  // plan: skip MeasurePlanTime
};

// Shared by both commands: parses --max-task-memory, runs CheckJob and
// reports a failure. Returns nullopt (with *exit_code set) on failure.
std::optional<CheckedJob> RunCheck(const Args& args, int* exit_code) {
  std::optional<uint64_t> budget;
  if (!args.max_task_memory.empty()) {
    absl::StatusOr<uint64_t> b = jobspec::ParseByteQuantity(args.max_task_memory);
    if (!b.ok()) {
      std::cerr << "--max-task-memory: " << glvq::ErrorLine(b.status()) << "\n";
      *exit_code = kExitUsage;
      return std::nullopt;
    }
    budget = *b;
  }
  absl::StatusOr<CheckedJob> checked = CheckJob(args.file, budget);
  if (!checked.ok()) {
    if (args.output == "json") {
      std::cout << ErrorJson(args.file, checked.status()).dump(2) << "\n";
    } else {
      std::cerr << LineWithCode(checked.status()) << "\n";
    }
    *exit_code = kExitBadInput;
    return std::nullopt;
  }
  return *std::move(checked);
}

void PrintValidate(const Args& args, const CheckedJob& c) {
  const coordinator::PlanTotals& t = c.plan.totals;
  if (args.output == "json") {
    json out = {{"file", args.file},
                {"valid", true},
                {"name", c.parsed.job.metadata().name()},
                {"tensors_quantized", t.tensors_quantized},
                {"tensors_passed_through", t.tensors_passed_through},
                {"tasks", t.tasks},
                {"job", ProtoJson(c.parsed.job)}};
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::cout << absl::StrFormat("%s: valid (%d tensors to quantize, %d passed through)\n", args.file,
                               t.tensors_quantized, t.tensors_passed_through);
}

std::string GroupsText(const v1::Task& task) {
  const uint32_t first = task.groups().first();
  return absl::StrFormat("[%d, %d) of %d", first, first + task.groups().count(),
                         task.total_groups());
}

void PrintPlanJson(const CheckedJob& c, const std::optional<MeasuredTime>& measured) {
  const v1::JobSpec& spec = c.parsed.job.spec();
  const coordinator::PlanTotals& t = c.plan.totals;
  json tasks = json::array();
  for (const v1::Task& task : c.plan.tasks) {
    tasks.push_back({{"id", task.id()},
                     {"tensor", task.tensor()},
                     {"groups",
                      {{"first", task.groups().first()},
                       {"count", task.groups().count()},
                       {"total", task.total_groups()}}},
                     {"weights", task.weights()},
                     {"memory_bytes", task.memory_bytes()},
                     {"estimated_seconds", task.estimated_seconds()}});
  }
  json pass = json::array();
  for (const coordinator::PassThrough& p : c.plan.pass_through) {
    pass.push_back({{"tensor", p.name}, {"reason", p.reason}});
  }
  json out = {{"name", c.parsed.job.metadata().name()},
              {"model", spec.model().path()},
              {"output", spec.output().path()},
              {"max_task_memory_bytes", spec.workers().max_task_memory_bytes()},
              {"tasks", std::move(tasks)},
              {"pass_through", std::move(pass)},
              {"totals",
               {{"tasks", t.tasks},
                {"tensors_quantized", t.tensors_quantized},
                {"tensors_passed_through", t.tensors_passed_through},
                {"weights", t.weights},
                {"read_bytes", t.read_bytes},
                {"write_bytes", t.write_bytes},
                {"max_task_memory_bytes", t.max_task_memory_bytes},
                {"estimated_seconds", t.estimated_seconds}}}};
  if (measured) {
    out["totals"]["measured_seconds"] = {{"low", measured->low_seconds},
                                         {"high", measured->high_seconds}};
  }
  std::cout << out.dump(2) << "\n";
}

void PrintPlanTable(const CheckedJob& c, const std::optional<MeasuredTime>& measured) {
  const v1::JobSpec& spec = c.parsed.job.spec();
  const coordinator::PlanTotals& t = c.plan.totals;
  const uint64_t budget = spec.workers().max_task_memory_bytes();
  std::cout << "job:    " << c.parsed.job.metadata().name() << "\n"
            << "model:  " << spec.model().path() << "\n"
            << "output: " << spec.output().path() << "\n"
            << "task memory budget: "
            << (budget == 0 ? std::string("none (one task per tensor)")
                            : jobspec::FormatBytes(budget))
            << "\n\n";
  size_t width = 6;
  for (const v1::Task& task : c.plan.tasks) width = std::max(width, task.tensor().size());
  const int w = static_cast<int>(width);
  std::cout << absl::StrFormat("%-25s  %-*s  %-18s  %12s  %12s\n", "TASK", w, "TENSOR", "GROUPS",
                               "WEIGHTS", "MEMORY");
  for (const v1::Task& task : c.plan.tasks) {
    std::cout << absl::StrFormat("%-25s  %-*s  %-18s  %12d  %12s\n", task.id(), w, task.tensor(),
                                 GroupsText(task), task.weights(),
                                 jobspec::FormatBytes(task.memory_bytes()));
  }
  if (!c.plan.pass_through.empty()) {
    std::cout << "\npassed through unchanged:\n";
    for (const coordinator::PassThrough& p : c.plan.pass_through) {
      std::cout << "  " << p.name << "  (" << p.reason << ")\n";
    }
  }
  std::cout << absl::StrFormat(
      "\ntotals: %d tasks, %d tensors quantized, %d passed through, %d weights\n"
      "  read %s, write ~%s (estimate), largest task ~%s\n"
      "  estimated time ~%.1f s on one CPU core (per-method rates from the development "
      "machine, docs/job-spec.md)\n",
      t.tasks, t.tensors_quantized, t.tensors_passed_through, t.weights,
      jobspec::FormatBytes(t.read_bytes), jobspec::FormatBytes(t.write_bytes),
      jobspec::FormatBytes(t.max_task_memory_bytes), t.estimated_seconds);
  if (measured) {
    const int cores = UsableCores();
    std::cout << absl::StrFormat(
        "  measured here: %.1f-%.1f s on one CPU core, ~%.1f-%.1f s on this machine's %d "
        "cores (the job's settings on synthetic slices of its shapes; %.1f s to measure)\n",
        measured->low_seconds, measured->high_seconds, measured->low_seconds / cores,
        measured->high_seconds / cores, cores, measured->measuring_seconds);
  }
}

CLI::App* AddJobCommand(CLI::App& app, const char* name, const char* help,
                        const std::shared_ptr<Args>& args) {
  auto* cmd = app.add_subcommand(name, help);
  cmd->add_option("job", args->file, "Job spec (YAML)")->required();
  AddJsonOutputFlag(cmd, &args->output);
  return cmd;
}

}  // namespace

void RegisterValidateCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<Args>();
  auto* cmd = AddJobCommand(
      app, "validate", "Check a job spec offline: keys, values, model, output path, plan", args);
  cmd->callback([args, exit_code] {
    if (std::optional<CheckedJob> c = RunCheck(*args, exit_code)) PrintValidate(*args, *c);
  });
}

void RegisterPlanCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<Args>();
  auto* cmd = AddJobCommand(
      app, "plan", "Show the tasks of a job, memory per task, bytes to read and write, time", args);
  cmd->add_flag("--no-measure", args->no_measure,
                "Skip measuring the job's settings on this machine (a few seconds)");
  cmd->add_option("--max-task-memory", args->max_task_memory,
                  "Memory budget per task (bytes, or 8Gi/512Mi/4G); overrides the spec's "
                  "workers.maxTaskMemoryBytes");
  cmd->callback([args, exit_code] {
    std::optional<CheckedJob> c = RunCheck(*args, exit_code);
    if (!c) return;
    std::optional<MeasuredTime> measured;
    if (!args->no_measure) {
      absl::StatusOr<MeasuredTime> m = MeasurePlanTime(c->plan.tasks);
      if (m.ok()) {
        measured = *m;
      } else {
        std::cerr << "glvq plan: could not measure the time here: " << ErrorLine(m.status())
                  << "\n";
      }
    }
    if (args->output == "json") {
      PrintPlanJson(*c, measured);
    } else {
      PrintPlanTable(*c, measured);
    }
  });
}

}  // namespace glvq::cli
