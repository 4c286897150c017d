// slimlm batch: offline inference over many prompts through the continuous-batching scheduler.
// Reads JSON lines ({"id", "prompt", and optionally "max_tokens", "temperature", "top_k",
// "top_p", "min_p", "seed", "stop"}), writes one JSON line per input line as each finishes
// ({"id", "text", "finish_reason", "usage"} or {"id", "error"}). A line that cannot be run gets
// its error line and the job goes on. Resumable: ids already in the output are skipped, and a
// last line cut short by a crash is dropped before appending.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "slimlm/core/progress.h"
#include "slimlm/core/timer.h"
#include "slimlm/serve/request_json.h"
#include "slimlm/serve/scheduler.h"
#include "tools/command.h"
#include "tools/common.h"
#include "tools/profile_report.h"

namespace slimlm::tools {
namespace {

struct BatchArgs {
  std::string model;
  std::string input;
  std::string output;
  int threads = 0;
  int64_t max_running = 16;
  int64_t step_tokens = 256;
  int64_t block_size = 16;
  int64_t ctx = 0;  // Positions per request; 0: the most a line needs (model's context at most).
  std::string kv_type = "f16";
  int64_t max_tokens = 128;  // Default per line.
  float temperature = 0.0f;  // Default per line: greedy, so that a job is reproducible.
  bool profile = false;
  bool json = false;
};

// The id of a line: its "id" (a string, or a number written as one), else its line number.
std::string LineId(const nlohmann::json& j, int64_t line_number) {
  if (j.is_object() && j.contains("id")) {
    if (j["id"].is_string()) return j["id"].get<std::string>();
    if (j["id"].is_number_integer()) return std::to_string(j["id"].get<int64_t>());
  }
  return fmt::format("line-{}", line_number);
}

// The ids already written, after cutting a last line that a crash left without its newline.
// Read line by line: an output of any size is never held in memory.
Result<std::set<std::string>> ReadDone(const std::string& path) {
  std::set<std::string> done;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return done;
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("{}: cannot read", path);
  uint64_t whole = 0;  // Bytes of the complete lines.
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // No newline after it: cut short.
    whole += line.size() + 1;
    try {
      const nlohmann::json j = nlohmann::json::parse(line);
      if (j.is_object() && j.contains("id") && j["id"].is_string()) done.insert(j["id"]);
    } catch (const std::exception&) {
      return InvalidArgumentError("{}: a line is not JSON; is this a batch output file?", path);
    }
  }
  in.close();
  if (whole < std::filesystem::file_size(path, ec) && !ec) {
    std::filesystem::resize_file(path, whole, ec);
    if (ec) return IoError("{}: cannot drop its cut last line: {}", path, ec.message());
  }
  return done;
}

// The request of one input line, or why it cannot be run.
Result<serve::Request> ParseLine(const nlohmann::json& j, const Model& model,
                                 const BatchArgs& args) {
  if (!j.is_object()) return InvalidArgumentError("the line is not a JSON object");
  if (!j.contains("prompt") || !j["prompt"].is_string()) {
    return InvalidArgumentError("\"prompt\" must be a string");
  }
  serve::Request r;
  const std::string prompt = j["prompt"].get<std::string>();
  if (prompt.empty()) return InvalidArgumentError("\"prompt\" is empty");
  r.prompt = model.tokenizer()->Encode(prompt, true, /*parse_special=*/false);
  r.max_tokens = args.max_tokens;
  r.sampling.temperature = args.temperature;
  SLIMLM_RETURN_IF_ERROR(serve::ReadGenerationFields(j, &r));
  return r;
}

Status Batch(const BatchArgs& args) {
  SLIMLM_ASSIGN_OR_RETURN(DType kv_type, ParseKvType(args.kv_type));
  std::ifstream in(args.input);
  if (!in) return NotFoundError("{}: cannot open", args.input);
  // The input is read twice (below), which a pipe or a directory cannot give.
  std::error_code error;
  if (!std::filesystem::is_regular_file(args.input, error)) {
    return InvalidArgumentError(
        "{}: not a regular file (batch reads its input twice: give a file, not a pipe)",
        args.input);
  }
  SLIMLM_RETURN_IF_ERROR(CheckWritable(args.output));
  SLIMLM_ASSIGN_OR_RETURN(std::set<std::string> done, ReadDone(args.output));
  SLIMLM_ASSIGN_OR_RETURN(auto model, LoadModelForCommand(args.model, "", true));

  // Lines are counted first (for the progress bar's total), then read one at a time as the
  // queue has room: an input of any size is never held in memory. Without -c, the first pass
  // also finds the most positions a line to run needs (prompt and max_tokens), and the KV pool
  // holds that much per sequence rather than the model's whole context: 16 sequences of 2048
  // positions of 110m in f16 are 1.2 GB, written at start.
  const int64_t model_ctx = model->config().context_length;
  int64_t total_lines = 0;
  int64_t longest = 0;
  for (std::string line; std::getline(in, line);) {
    ++total_lines;
    if (args.ctx > 0) continue;
    try {
      const nlohmann::json j = nlohmann::json::parse(line);
      if (done.contains(LineId(j, total_lines))) continue;
      Result<serve::Request> request = ParseLine(j, *model, args);
      if (!request.ok()) continue;  // Answered with its error when read again.
      // max_tokens may be any int64 here: capped first, so the sum cannot overflow.
      longest = std::max(longest, static_cast<int64_t>(request->prompt.size()) +
                                      std::min(request->max_tokens, model_ctx));
    } catch (const std::exception&) {
      continue;  // Not JSON: answered with its error when read again.
    }
  }
  in.clear();
  in.seekg(0);
  const int64_t ctx = std::min(args.ctx > 0 ? args.ctx : std::max<int64_t>(longest, 1), model_ctx);

  serve::SchedulerOptions options;
  options.max_running = args.max_running;
  options.max_waiting = args.max_running;  // Lines are read as room frees up.
  options.max_step_tokens = args.step_tokens;
  options.block_size = args.block_size;
  options.max_context = ctx;
  options.n_threads = ResolveThreads(args.threads);
  options.kv_type = kv_type;
  OpProfile profile;
  if (args.profile) options.profile = &profile;
  SLIMLM_ASSIGN_OR_RETURN(auto scheduler, serve::Scheduler::Create(*model, options));
  const int fd = ::open(args.output.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("{}: cannot open for writing: {}", args.output, std::strerror(errno));
  // One write per line, so that a crash leaves at most one cut line (dropped on resume).
  auto emit = [&](const nlohmann::json& j) -> Status {
    const std::string text = j.dump() + "\n";
    if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      return IoError("{}: cannot write: {}", args.output, std::strerror(errno));
    }
    return Status::Ok();
  };
  struct Counts {
    int64_t ok = 0, errors = 0, skipped = 0, prompt_tokens = 0, completion_tokens = 0;
  } counts;
  std::map<int64_t, std::string> id_of;  // Scheduler id -> line id.
  std::map<int64_t, std::string> text_of;
  Timer timer;
  double decode_seconds = 0;
  int64_t decode_tokens = 0;
  Status status = Status::Ok();
  {
    Progress progress("batch", total_lines, "lines");
    int64_t finished = 0;
    int64_t line_number = 0;
    bool more = true;  // Input lines left.
    std::string line;
    while (status.ok() && (more || !scheduler->Idle())) {
      // Keep the queue topped up; lines that cannot be run are answered at once.
      while (more && scheduler->stats().waiting < args.max_running) {
        if (!std::getline(in, line)) {
          more = false;
          break;
        }
        ++line_number;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        nlohmann::json j;
        std::string id;
        try {
          j = nlohmann::json::parse(line);
          id = LineId(j, line_number);
        } catch (const std::exception& e) {
          id = fmt::format("line-{}", line_number);
          if (done.contains(id)) {
            ++counts.skipped;
            progress.Update(++finished);
            continue;
          }
          status = emit({{"id", id}, {"error", fmt::format("not JSON: {}", e.what())}});
          ++counts.errors;
          progress.Update(++finished);
          continue;
        }
        if (done.contains(id)) {
          ++counts.skipped;
          progress.Update(++finished);
          continue;
        }
        Result<serve::Request> request = ParseLine(j, *model, args);
        Result<int64_t> sid = request.ok() ? scheduler->Submit(std::move(*request))
                                           : Result<int64_t>(request.status());
        if (!sid.ok()) {
          status = emit({{"id", id}, {"error", sid.status().message()}});
          ++counts.errors;
          progress.Update(++finished);
          continue;
        }
        id_of[*sid] = id;
      }
      if (!status.ok() || scheduler->Idle()) continue;
      std::vector<serve::Event> events;
      const int64_t prompt_before = scheduler->stats().prompt_tokens;
      Timer step_timer;
      status = scheduler->Step(&events);
      // Steps without prompt tokens: the decode rate, as llama-batched-bench's S_TG counts it.
      const serve::SchedulerStats after = scheduler->stats();
      if (after.prompt_tokens == prompt_before && after.last_step_tokens > 0) {
        decode_seconds += step_timer.Seconds();
        decode_tokens += after.last_step_tokens;
      }
      for (const serve::Event& e : events) {
        text_of[e.id] += e.text;
        if (e.finish == serve::FinishReason::kNone || !status.ok()) continue;
        status = emit({{"id", id_of[e.id]},
                       {"text", text_of[e.id]},
                       {"finish_reason", serve::FinishReasonName(e.finish)},
                       {"usage",
                        {{"prompt_tokens", e.prompt_tokens},
                         {"completion_tokens", e.completion_tokens},
                         {"total_tokens", e.prompt_tokens + e.completion_tokens}}}});
        counts.ok += 1;
        counts.prompt_tokens += e.prompt_tokens;
        counts.completion_tokens += e.completion_tokens;
        id_of.erase(e.id);
        text_of.erase(e.id);
        progress.Update(++finished);
      }
    }
  }
  ::close(fd);
  SLIMLM_RETURN_IF_ERROR(status);
  const double seconds = timer.Seconds();
  const serve::SchedulerStats stats = scheduler->stats();
  if (args.profile) {
    // On stderr, so that the summary on stdout stays whole.
    SLIMLM_ASSIGN_OR_RETURN(ProfileLimits limits, MeasureProfileLimits(options.n_threads));
    fmt::print(stderr, "{}", FormatProfile("batch", profile, limits));
  }
  if (args.json) {
    fmt::print("{}\n",
               nlohmann::json{
                   {"completed", counts.ok},
                   {"errors", counts.errors},
                   {"skipped", counts.skipped},
                   {"prompt_tokens", counts.prompt_tokens},
                   {"completion_tokens", counts.completion_tokens},
                   {"seconds", seconds},
                   {"generation_tokens_per_second",
                    static_cast<double>(counts.completion_tokens) / seconds},
                   {"decode_tokens_per_second",
                    decode_seconds > 0 ? static_cast<double>(decode_tokens) / decode_seconds : 0.0},
                   {"context", ctx},
                   {"kv_cache_bytes", scheduler->engine().KvCacheBytes()},
                   {"preemptions", stats.preemptions},
                   {"prefix_cache_hits", stats.prefix_hits},
                   {"prefix_cache_queries", stats.prefix_queries},
                   {"steps", stats.steps}}
                   .dump(2));
  } else {
    fmt::print(
        "{} completed, {} errors, {} skipped (already in {}); {} prompt and {} generated tokens "
        "in {:.2f} s: {:.1f} generated tokens/s at up to {} sequences at once ({:.1f} tokens/s in "
        "steps without prompt tokens); {} preemptions, {} of {} prompt tokens from the prefix "
        "cache\n",
        counts.ok, counts.errors, counts.skipped, args.output, counts.prompt_tokens,
        counts.completion_tokens, seconds, static_cast<double>(counts.completion_tokens) / seconds,
        args.max_running,
        decode_seconds > 0 ? static_cast<double>(decode_tokens) / decode_seconds : 0.0,
        stats.preemptions, stats.prefix_hits, stats.prefix_queries);
  }
  return Status::Ok();
}

}  // namespace

CommandSpec BatchCommand() {
  return {"batch", "Offline inference over a JSONL file of prompts, batched continuously",
          [](CLI::App* app) {
            auto args = std::make_shared<BatchArgs>();
            app->add_option("model", args->model, "Model: GGUF file, HF folder or llama2.c .bin")
                ->required();
            app->add_option("input", args->input,
                            "JSON lines: {\"id\", \"prompt\", \"max_tokens\", \"temperature\", "
                            "\"top_k\", \"top_p\", \"min_p\", \"seed\", \"stop\"}")
                ->required();
            app->add_option("-o,--output", args->output,
                            "JSON lines out, appended; ids already there are skipped")
                ->required();
            AddThreadsOption(app, &args->threads);
            app->add_option("--max-running", args->max_running, "Sequences decoded at once")
                ->capture_default_str()
                ->check(CLI::Range(int64_t{1}, int64_t{4096}));
            app->add_option("--step-tokens", args->step_tokens, "Token budget of one step")
                ->capture_default_str()
                ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
            app->add_option("-c,--ctx", args->ctx,
                            "Positions per request, prompt and completion (0: the most a line "
                            "needs, at most the model's context); the KV pool holds "
                            "--max-running of them")
                ->check(CLI::NonNegativeNumber);
            app->add_option("--block-size", args->block_size, "Positions per KV-cache block")
                ->capture_default_str()
                ->check(CLI::Range(int64_t{1}, int64_t{4096}));
            app->add_option("--kv-type", args->kv_type, "KV cache type: f32, f16 or q8_0")
                ->capture_default_str();
            app->add_option("--max-tokens", args->max_tokens, "Default tokens to generate per line")
                ->capture_default_str()
                ->check(CLI::PositiveNumber);
            app->add_option("--temp", args->temperature, "Default temperature per line (0: greedy)")
                ->capture_default_str()
                ->check(CLI::NonNegativeNumber);
            app->add_flag("--profile", args->profile,
                          "Time, bytes and operations per operation type, on stderr");
            app->add_flag("--json", args->json, "Print the summary as JSON");
            return [args] { return Batch(*args); };
          }};
}

}  // namespace slimlm::tools
