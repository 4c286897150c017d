// slimlm distill: train a smaller student on a teacher's next-token distributions as well as on
// the text. The student is the teacher with only some of its layers (--keep-layers), any model
// of the same vocabulary (--student: a pruned model, ...), a shape with random weights and the
// teacher's vocabulary (--preset and its overrides), or a checkpoint of an earlier distillation
// (--resume).
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "slimlm/core/progress.h"
#include "slimlm/core/timer.h"
#include "slimlm/formats/model_file.h"
#include "slimlm/model/tokenizer.h"
#include "slimlm/train/distill.h"
#include "slimlm/train/trainer.h"
#include "tools/command.h"
#include "tools/common.h"
#include "tools/training_run.h"

namespace slimlm::tools {
namespace {

struct DistillArgs {
  TrainingRunArgs run;
  std::string teacher;
  std::string student;
  std::vector<int64_t> keep_layers;
  ShapeArgs shape;
  train::DistillOptions distill;
  int64_t top_k = 16;
  std::string teacher_cache;
};

Result<train::Transformer<float>> LoadTransformer(const std::string& path, Metadata* metadata) {
  Result<WeightStore> store = LoadModel(path, LoadOptions{});
  if (!store.ok()) return store.status();
  Result<train::Transformer<float>> model = train::FromWeightStore(*store);
  if (!model.ok()) return model.status().WithContext(path);
  *metadata = store->metadata();
  return model;
}

// The student: a checkpoint, a model file, a shape with random weights, or the teacher's listed
// layers.
Result<train::TrainState> Student(const DistillArgs& args, const train::Transformer<float>& teacher,
                                  const Metadata& teacher_metadata,
                                  const train::AdamWOptions& adam) {
  const int sources = !args.run.resume.empty() + !args.student.empty() + !args.keep_layers.empty() +
                      !args.shape.preset.empty();
  if (sources != 1) {
    return InvalidArgumentError(
        "give one student: --keep-layers LIST (the teacher's layers), --student FILE, --preset "
        "NAME (a shape with random weights) or --resume CHECKPOINT");
  }
  if (!args.run.resume.empty()) return train::LoadCheckpoint(args.run.resume, adam);
  if (!args.student.empty()) {
    Metadata metadata;
    SLIMLM_ASSIGN_OR_RETURN(train::Transformer<float> model,
                            LoadTransformer(args.student, &metadata));
    return train::StartTraining(std::move(model), std::move(metadata), adam);
  }
  if (!args.shape.preset.empty()) {
    // A shape of its own, with the teacher's vocabulary.
    SLIMLM_ASSIGN_OR_RETURN(WeightStore store,
                            MakeShapedModel(args.shape, teacher_metadata, args.run));
    SLIMLM_ASSIGN_OR_RETURN(train::Transformer<float> model, train::FromWeightStore(store));
    return train::StartTraining(std::move(model), store.metadata(), adam);
  }
  SLIMLM_ASSIGN_OR_RETURN(train::Transformer<float> model,
                          train::KeepLayers(teacher, args.keep_layers));
  Metadata metadata = teacher_metadata;
  std::string kept;
  for (int64_t l : args.keep_layers) kept += (kept.empty() ? "" : ",") + std::to_string(l);
  metadata.Set("slimlm.distill.keep_layers", MetaValue::String(kept));
  return train::StartTraining(std::move(model), std::move(metadata), adam);
}

// The teacher's top-k over every training window: read from --teacher-cache when it holds this
// teacher and data, else computed (and saved there).
Result<train::TeacherCache> TeacherPass(const DistillArgs& args, train::Transformer<float>& teacher,
                                        const train::Dataset& data, int threads) {
  const uint64_t key =
      train::TeacherCache::Key(teacher, data.Fingerprint(), data.n_ctx(), args.top_k);
  if (!args.teacher_cache.empty()) {
    Result<train::TeacherCache> cached =
        train::TeacherCache::Load(args.teacher_cache, key, teacher.config().n_vocab);
    if (cached.ok()) {
      fmt::print(stderr, "teacher: top {} of {} windows read from {}\n", cached->k(),
                 cached->slots(), args.teacher_cache);
      return cached;
    }
  }
  Timer timer;
  std::optional<Progress> progress;
  progress.emplace("teacher", data.windows(), "windows");
  train::TeacherCache cache =
      train::TeacherCache::Build(teacher, data, args.top_k, 4 * threads,
                                 [&](int64_t done, int64_t) { progress->Update(done); });
  progress.reset();
  fmt::print(stderr, "teacher: top {} of {} windows in {} ({})\n", cache.k(), cache.slots(),
             Progress::FormatDuration(timer.Seconds()),
             FormatBytes(static_cast<double>(cache.bytes())));
  if (!args.teacher_cache.empty()) SLIMLM_RETURN_IF_ERROR(cache.Save(args.teacher_cache, key));
  return cache;
}

Status Distill(const DistillArgs& args) {
  SLIMLM_RETURN_IF_ERROR(CheckTrainingRunArgs(args.run));
  if (args.teacher.empty()) return InvalidArgumentError("give the teacher with --teacher FILE");
  if (!args.teacher_cache.empty()) SLIMLM_RETURN_IF_ERROR(CheckWritable(args.teacher_cache));
  train::TrainOptions options = MakeTrainOptions(args.run);
  Metadata teacher_metadata;
  // Held only until its top-k is cached: training needs the memory more.
  std::optional<train::Transformer<float>> held;
  {
    SLIMLM_ASSIGN_OR_RETURN(train::Transformer<float> loaded,
                            LoadTransformer(args.teacher, &teacher_metadata));
    held.emplace(std::move(loaded));
  }
  train::Transformer<float>& teacher = *held;
  teacher.SetThreads(options.threads);
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> teacher_tokenizer,
                          Tokenizer::FromMetadata(teacher_metadata));
  SLIMLM_ASSIGN_OR_RETURN(train::TrainState state,
                          Student(args, teacher, teacher_metadata, options.adam));
  SLIMLM_RETURN_IF_ERROR(RecordRun(args.run, !args.run.resume.empty(), &state.metadata));
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                          Tokenizer::FromMetadata(state.metadata));
  SLIMLM_RETURN_IF_ERROR(train::CheckSameVocabulary(*teacher_tokenizer, *tokenizer));
  if (teacher.config().context_length > 0 && args.run.ctx > teacher.config().context_length) {
    return InvalidArgumentError("--ctx {} exceeds the teacher's context of {}", args.run.ctx,
                                teacher.config().context_length);
  }
  Metadata& md = state.metadata;
  md.Set("slimlm.distill.teacher", MetaValue::String(args.teacher));
  md.Set("slimlm.distill.temperature",
         MetaValue::F32(static_cast<float>(args.distill.temperature)));
  md.Set("slimlm.distill.reverse_weight",
         MetaValue::F32(static_cast<float>(args.distill.reverse_weight)));
  md.Set("slimlm.distill.ce_weight", MetaValue::F32(static_cast<float>(args.distill.ce_weight)));
  md.Set("slimlm.distill.top_k", MetaValue::I64(args.top_k));
  SLIMLM_ASSIGN_OR_RETURN(train::Dataset data, LoadTrainingData(args.run, &state, *tokenizer));
  const double teacher_loss = train::ValidLoss(teacher, data, args.run.eval_windows);
  fmt::print(stderr, "teacher: {:.2f} M parameters, held-out loss {:.4f}; student {:.2f} M\n",
             static_cast<double>(teacher.params().size()) / 1e6, teacher_loss,
             static_cast<double>(state.model.params().size()) / 1e6);
  SLIMLM_ASSIGN_OR_RETURN(train::TeacherCache cache,
                          TeacherPass(args, teacher, data, options.threads));
  held.reset();
  train::DistillLoss loss(cache, data, args.distill);
  options.batch_loss = [&loss](std::span<const int64_t> windows) {
    loss.Bind(windows);
    return &loss;
  };
  return RunTraining(args.run, options, data, &state);
}

}  // namespace

CommandSpec DistillCommand() {
  return {"distill",
          "Train a smaller student on a teacher's distributions (knowledge distillation)",
          [](CLI::App* app) {
            auto a = std::make_shared<DistillArgs>();
            app->add_option("--teacher", a->teacher, "The teacher model")->required();
            app->add_option("--keep-layers", a->keep_layers,
                            "Student: the teacher with only these layers (e.g. 0,2,4)")
                ->delimiter(',');
            app->add_option("--student", a->student,
                            "Student: this model (same vocabulary as the teacher)");
            AddShapeOptions(app, &a->shape);
            app->add_option("--temperature", a->distill.temperature,
                            "Softmax temperature of teacher and student in the KL term")
                ->check(CLI::Range(0.05, 100.0))
                ->capture_default_str();
            app->add_option("--reverse-weight", a->distill.reverse_weight,
                            "0: forward KL(teacher||student), 1: reverse KL, between: a mix")
                ->check(CLI::Range(0.0, 1.0))
                ->capture_default_str();
            app->add_option("--ce-weight", a->distill.ce_weight,
                            "Weight of the cross-entropy on the text; the KL term gets the rest")
                ->check(CLI::Range(0.0, 1.0))
                ->capture_default_str();
            app->add_option("--top-k", a->top_k, "Teacher tokens kept per position")
                ->check(CLI::Range(int64_t{1}, int64_t{1} << 16))
                ->capture_default_str();
            app->add_option("--teacher-cache", a->teacher_cache,
                            "Keep the teacher's top-k in this file; a later run with the same "
                            "teacher and data reads it instead of running the teacher");
            AddTrainingRunOptions(app, &a->run);
            return [a] { return Distill(*a); };
          }};
}

}  // namespace slimlm::tools
