#include "tools/common.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>

#include <fmt/core.h>

#include "slimlm/core/file.h"
#include "slimlm/core/thread_pool.h"
#include "slimlm/kernels/probe.h"

namespace slimlm::tools {

void AddTokenizerOption(CLI::App* app, std::string* tokenizer_path) {
  app->add_option("--tokenizer", *tokenizer_path,
                  "Tokenizer file to use (tokenizer.bin, tokenizer.json or a GGUF file); needed "
                  "when the model has none");
}

void AddThreadsOption(CLI::App* app, int* threads) {
  app->add_option("-t,--threads", *threads,
                  "Threads (0: the number of physical cores; more than the usable CPUs are "
                  "clamped with a warning)")
      ->check(CLI::Range(0, 1024));
}

int ResolveThreads(int requested) {
  const int cpus = kernels::UsableCpuCount();
  if (requested <= 0) return std::min(PhysicalCoreCount(), cpus);
  if (requested > cpus) {
    // Threads beyond the CPUs only take turns on them, and the spinning workers of the pool
    // would slow every step down.
    fmt::print(stderr, "warning: -t {}: this process may use {} CPU{}; using {} threads\n",
               requested, cpus, cpus == 1 ? "" : "s", cpus);
    return cpus;
  }
  return requested;
}

Result<std::unique_ptr<Model>> LoadModelForCommand(const std::string& path,
                                                   const std::string& tokenizer_path,
                                                   bool require_tokenizer) {
  LoadOptions options;
  options.tokenizer_path = tokenizer_path;
  options.require_tokenizer = require_tokenizer;
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::Load(path, options));
  if (HasRandomWeights(*model)) {
    fmt::print(stderr,
               "note: {} was made by 'slimlm init': its weights are random, so its output is "
               "noise (fine for speed and memory measurements)\n",
               path);
  }
  return model;
}

// Bytes on disk: the file, or the sum of the folder's regular files.
uint64_t DiskBytes(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  if (!S_ISDIR(st.st_mode)) return static_cast<uint64_t>(st.st_size);
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
    if (entry.is_regular_file(ec)) total += entry.file_size(ec);
  }
  return total;
}

void AddCalibrationOptions(CLI::App* app, CalibrationArgs* args, const std::string& what) {
  app->add_option("--calib", args->text, what);
  app->add_option("--calib-ctx", args->ctx, "Tokens per calibration chunk")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20))
      ->capture_default_str();
  app->add_option("--calib-chunks", args->chunks, "Calibration chunks at most (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

Status CheckWritable(const std::string& path) {
  // The writer's temporary file is removed when it goes out of scope uncommitted.
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFileWriter> probe, AtomicFileWriter::Create(path));
  return Status::Ok();
}

bool HasRandomWeights(const Model& model) {
  // A model trained from slimlm init's weights keeps the init keys as provenance; the training
  // record says it is random no more.
  const Metadata& md = model.store().metadata();
  return md.GetBool("slimlm.init.random_weights").value_or(false) && !md.Has("slimlm.train.tokens");
}

Result<DType> ParseKvType(const std::string& name) {
  std::optional<DType> type = ParseDType(name);
  if (!type || (*type != DType::kF32 && *type != DType::kF16 && *type != DType::kQ8_0)) {
    return InvalidArgumentError("KV cache type '{}' is not one of f32, f16, q8_0", name);
  }
  return *type;
}

Result<double> ParseByteSize(const std::string& text, const std::string& what) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = text.substr(used);
  std::transform(unit.begin(), unit.end(), unit.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  static const std::pair<const char*, double> kUnits[] = {
      {"", 1},       {"b", 1},        {"k", 0x1p10},   {"kib", 0x1p10}, {"kb", 1e3},
      {"m", 0x1p20}, {"mib", 0x1p20}, {"mb", 1e6},     {"g", 0x1p30},   {"gib", 0x1p30},
      {"gb", 1e9},   {"t", 0x1p40},   {"tib", 0x1p40}, {"tb", 1e12}};
  if (used > 0 && std::isfinite(value) && value > 0) {
    for (const auto& [name, scale] : kUnits) {
      if (unit == name) return value * scale;
    }
  }
  return InvalidArgumentError("{} '{}' is not a positive size such as 4GiB, 512MiB or 2.5GB", what,
                              text);
}

std::string FormatBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.2f} {}", bytes, units[u]);
}

}  // namespace slimlm::tools
