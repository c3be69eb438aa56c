#include "client/examples.h"

#include <map>
#include <string>

namespace glvq::cli {
namespace {

const std::map<std::string, std::string>& Examples() {
  static const auto* examples = new std::map<std::string, std::string>{
      {"quantize",
       "  glvq quantize --model out/models/smollm2 --out out/smollm2-2bit --method e8p --bits 2 \\\n"
       "      --hessians out/models/smollm2/hessians      # 2 bits per weight, Hessian-aware\n"
       "  glvq quantize --config examples/quickstart-job.yaml --out /tmp/q   # a job spec, one flag overridden\n"
       "  glvq quantize --model M --out O --method trellis --bits 3 --threads 8\n"
       "Defaults: method glvq, 2 bits, group size 128 (trellis 32), all usable cores,\n"
       "the best measured tuning (--preset best); docs/job-spec.md lists every key."},
      {"eval",
       "  glvq eval --model M --tokens out/models/smollm2/eval.tokens              # NLL, perplexity\n"
       "  glvq eval --model M --packed out/smollm2-2bit --tokens T --json         # + KL, top-1 vs M\n"
       "Units: NLL and KL in nats per token; top-1 as a fraction."},
      {"calibrate",
       "  glvq calibrate --model M --tokens out/models/smollm2/calib.tokens --out M/hessians"},
      {"generate",
       "  glvq generate --packed out/smollm2-2bit --prompt \"The Python tutorial\"   # greedy\n"
       "  glvq generate --model out/models/smollm2 --prompt \"def main():\" --temperature 0.8 --top-k 40\n"
       "  glvq generate --packed P --prompt \"Hello\" --max-tokens 32 --json    # text, tokens, tokens/s\n"
       "Stops at the config's eos_token_id unless --no-stop; the text streams to stdout."},
      {"finetune",
       "  glvq finetune --model out/models/smollm2 --packed out/smollm2-2bit \\\n"
       "      --tokens out/models/smollm2/calib.tokens --out out/smollm2-2bit-ft --steps 150\n"
       "  glvq finetune --model M --packed P --tokens T --out O --hessians M/hessians --json\n"
       "Same codes and bits; tunes stored gains and norm weights (KL to --model)."},
      {"tokenize",
       "  glvq tokenize --tokenizer M --text notes.txt --out calib.tokens --seq-len 512 --samples 64\n"
       "  glvq tokenize --tokenizer M/tokenizer.json --jsonl data.jsonl --field text --out calib.tokens\n"
       "  glvq tokenize --tokenizer M --text doc.txt --seq-len 0 --out doc.tokens   # whole, one line\n"
       "Sequences: the documents' ids joined (--separator-id between two), cut into --seq-len windows."},
      {"inspect",
       "  glvq inspect out/smollm2-2bit           # per tensor: method, bits, bytes\n"
       "  glvq inspect model.safetensors --json"},
      {"dequantize", "  glvq dequantize --packed out/smollm2-2bit --out /tmp/dense --dtype BF16"},
      {"export", "  glvq export --packed out/rtn-4bit --out /tmp/gptq --format gptq"},
      {"example-model", "  glvq example-model --out /tmp/example"},
      {"sample", "  glvq sample --model M --out /tmp/eval.tokens --sequences 16 --length 256"},
      {"validate", "  glvq validate job.yaml\n  glvq validate job.yaml --json"},
      {"plan", "  glvq plan job.yaml --max-task-memory 8Gi     # tasks, memory per task, time"},
      {"submit",
       "  glvq submit job.yaml --wait                 # to $GLVQ_COORDINATOR (127.0.0.1:7070)\n"
       "  glvq submit job.yaml --coordinator host:7070 --tls-ca ca.pem --token-file client.token"},
      {"status", "  glvq status JOB_ID\n  glvq status JOB_ID --json"},
      {"watch", "  glvq watch JOB_ID"},
      {"cancel", "  glvq cancel JOB_ID"},
      {"list", "  glvq list --json"},
      {"workers", "  glvq workers"},
  };
  return *examples;
}

}  // namespace

void AddExamples(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands({})) {
    const auto it = Examples().find(sub->get_name());
    if (it != Examples().end()) sub->footer("\nExamples:\n" + it->second);
  }
}

}  // namespace glvq::cli
