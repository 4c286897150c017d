// Options and helpers shared by several commands.
#ifndef SLIMLM_TOOLS_COMMON_H_
#define SLIMLM_TOOLS_COMMON_H_

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "slimlm/core/status.h"
#include "slimlm/model/model.h"

namespace slimlm::tools {

// Declares --tokenizer FILE on a command.
void AddTokenizerOption(CLI::App* app, std::string* tokenizer_path);
// Declares -t/--threads N (0: physical cores).
void AddThreadsOption(CLI::App* app, int* threads);
// The thread count to use for -t: 0 becomes the physical cores, more than the usable CPUs is
// clamped to them with a warning.
int ResolveThreads(int requested);

// Loads a model for a command; warns on stderr when its weights are random (slimlm init).
Result<std::unique_ptr<Model>> LoadModelForCommand(const std::string& path,
                                                   const std::string& tokenizer_path,
                                                   bool require_tokenizer);

// True when the model was made by `slimlm init` and never trained.
bool HasRandomWeights(const Model& model);

// Parses a KV cache type: f32, f16 or q8_0 (a usage error otherwise).
Result<DType> ParseKvType(const std::string& name);

// Fails now, naming the path, when a file cannot be written there (missing folder, no
// permission), so that a long job does not find out at its end. Leaves nothing behind.
Status CheckWritable(const std::string& path);

// Calibration text and how much of it to run (quantize, prune).
struct CalibrationArgs {
  std::string text;  // Path; empty: none.
  int64_t ctx = 512;
  int64_t chunks = 100;
};
// Declares --calib FILE (described by `what`), --calib-ctx N and --calib-chunks N.
void AddCalibrationOptions(CLI::App* app, CalibrationArgs* args, const std::string& what);

// Bytes on disk: the file, or the sum of the folder's regular files (0 when unreadable).
uint64_t DiskBytes(const std::string& path);

// A size as users write it: "4GiB", "512MiB", "1.5G" (K, M, G, T and KiB... are powers of
// 1024; KB, MB, GB, TB powers of 1000), or plain bytes. `what` names the option in errors.
Result<double> ParseByteSize(const std::string& text, const std::string& what);

// "1.23 MiB", "4.00 GiB".
std::string FormatBytes(double bytes);

}  // namespace slimlm::tools

#endif  // SLIMLM_TOOLS_COMMON_H_
