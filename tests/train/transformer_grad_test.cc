// The whole model's backward pass against finite differences of its loss, in double precision,
// for every parameter of a tiny Llama (grouped-query attention, partial RoPE, tied and separate
// output matrices); and the float model's round trip through a GGUF WeightStore.
#include "slimlm/train/transformer.h"

#include <cmath>
#include <random>
#include <vector>

#include <fmt/core.h>
#include <gtest/gtest.h>

#include "slimlm/model/context.h"
#include "slimlm/model/model.h"
#include "slimlm/train/ops.h"

namespace slimlm::train {
namespace {

ModelConfig TinyConfig() {
  ModelConfig c;
  c.n_vocab = 11;
  c.dim = 8;
  c.n_layers = 2;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.head_dim = 4;
  c.rope_dim = 2;
  c.ffn_dim = 12;
  c.context_length = 16;
  return c;
}

template <typename T>
void Randomize(Transformer<T>* model, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> dist(0.0, 0.5);
  for (T& p : model->params()) p = static_cast<T>(dist(rng));
  // Norm weights near 1, as trained models have them.
  for (const ParamSlot& s : model->slots()) {
    if (s.shape.rank() == 1) {
      for (int64_t i = 0; i < s.size; ++i) model->params()[s.offset + i] += T(1);
    }
  }
}

// A distillation loss for the gradient check: half cross-entropy, half DistillKl against a
// fixed two-token teacher per position.
class MixedKlLoss : public LogitLoss<double> {
 public:
  double operator()(int64_t seq, const double* logits, const int32_t* targets, double* dlogits,
                    int64_t n, int64_t vocab) const override {
    std::vector<int32_t> ids;
    std::vector<double> logp;
    for (int64_t t = 0; t < n; ++t) {
      ids.push_back(static_cast<int32_t>((seq * 3 + t) % vocab));
      ids.push_back(static_cast<int32_t>((seq * 3 + t + 5) % vocab));
      logp.push_back(std::log(0.6));
      logp.push_back(std::log(0.3));
    }
    std::vector<double> dkl(static_cast<size_t>(n * vocab));
    const double ce = CrossEntropy(logits, targets, dlogits, n, vocab);
    const double kl = DistillKl(logits, ids.data(), logp.data(), 2,
                                dlogits != nullptr ? dkl.data() : nullptr, n, vocab, 2.0, 0.3);
    if (dlogits != nullptr) {
      for (int64_t i = 0; i < n * vocab; ++i) dlogits[i] = 0.5 * dlogits[i] + 0.5 * dkl[i];
    }
    return 0.5 * ce + 0.5 * kl;
  }
};

TEST(Transformer, GradientOfEveryParameterMatchesFiniteDifferences) {
  MixedKlLoss distill;
  PassOptions<double> plain, dropout, kl;
  dropout.dropout = 0.3;
  dropout.dropout_seed = 11;
  kl.loss = &distill;
  for (bool tied : {false, true}) {
    for (const auto& [name, options] :
         {std::pair{"cross-entropy", plain}, std::pair{"dropout", dropout},
          std::pair{"distillation loss", kl}}) {
      SCOPED_TRACE(fmt::format("{}, {}", tied ? "tied" : "separate output", name));
      Transformer<double> model(TinyConfig(), tied);
      Randomize(&model, 7);
      // Two sequences of 5; one target not scored.
      const std::vector<int32_t> tokens = {1, 4, 2, 9, 3, 5, 5, 0, 10, 7};
      const std::vector<int32_t> targets = {4, 2, 9, 3, 6, 5, -1, 10, 7, 1};
      std::vector<double> grads(model.params().size(), 0.0);
      const double loss = model.ForwardBackward(tokens, targets, 2, 5, &grads, options);
      EXPECT_GT(loss, 0.0);
      constexpr double h = 1e-5;
      for (size_t i = 0; i < grads.size(); ++i) {
        double& p = model.params()[i];
        const double saved = p;
        p = saved + h;
        const double up = model.ForwardBackward(tokens, targets, 2, 5, nullptr, options);
        p = saved - h;
        const double down = model.ForwardBackward(tokens, targets, 2, 5, nullptr, options);
        p = saved;
        const double numeric = (up - down) / (2 * h);
        ASSERT_NEAR(grads[i], numeric, 1e-6 * std::max(1.0, std::fabs(numeric)))
            << "parameter " << i;
      }
    }
  }
}

// Dropout changes the loss, its masks depend on the seed, and a rate of 0 is no dropout.
TEST(Transformer, DropoutMasksDependOnTheSeedOnly) {
  Transformer<double> model(TinyConfig(), true);
  Randomize(&model, 3);
  const std::vector<int32_t> tokens = {1, 4, 2, 9, 3, 5, 5, 0, 10, 7};
  const std::vector<int32_t> targets = {4, 2, 9, 3, 6, 5, 1, 10, 7, 1};
  PassOptions<double> options;
  const double plain = model.ForwardBackward(tokens, targets, 2, 5, nullptr, options);
  options.dropout_seed = 5;
  EXPECT_EQ(model.ForwardBackward(tokens, targets, 2, 5, nullptr, options), plain);
  options.dropout = 0.5;
  const double a = model.ForwardBackward(tokens, targets, 2, 5, nullptr, options);
  EXPECT_NE(a, plain);
  EXPECT_EQ(model.ForwardBackward(tokens, targets, 2, 5, nullptr, options), a);
  options.dropout_seed = 6;
  EXPECT_NE(model.ForwardBackward(tokens, targets, 2, 5, nullptr, options), a);
}

// The float model (packed f32 kernels, sequences split over threads) computes the double
// model's loss and gradients to float precision.
TEST(Transformer, FloatPathWithThreadsMatchesTheDoubleReference) {
  ModelConfig c = TinyConfig();
  c.dim = 32;
  c.head_dim = 16;
  c.rope_dim = 16;
  c.ffn_dim = 48;
  c.n_vocab = 37;
  Transformer<double> ref(c, false);
  Randomize(&ref, 5);
  for (double& p : ref.params()) p *= 0.5;
  std::vector<int32_t> tokens, targets;
  for (int i = 0; i < 3 * 12; ++i) {
    tokens.push_back((i * 7 + 3) % 37);
    targets.push_back((i * 5 + 1) % 37);
  }
  for (double dropout : {0.0, 0.2}) {
    // The masks are the same in float and double, and on any thread.
    PassOptions<double> options;
    options.dropout = dropout;
    options.dropout_seed = 9;
    PassOptions<float> float_options;
    float_options.dropout = dropout;
    float_options.dropout_seed = 9;
    std::vector<double> g_ref(ref.params().size(), 0.0);
    const double loss_ref = ref.ForwardBackward(tokens, targets, 3, 12, &g_ref, options);
    double g_max = 0;
    for (double g : g_ref) g_max = std::max(g_max, std::fabs(g));
    for (int threads : {1, 2}) {
      SCOPED_TRACE(fmt::format("dropout {}, {} threads", dropout, threads));
      Transformer<float> model(c, false);
      for (size_t i = 0; i < ref.params().size(); ++i) {
        model.params()[i] = static_cast<float>(ref.params()[i]);
      }
      model.SetThreads(threads);
      std::vector<float> g(model.params().size(), 0.0f);
      const float loss = model.ForwardBackward(tokens, targets, 3, 12, &g, float_options);
      EXPECT_NEAR(loss, loss_ref, 1e-5 * loss_ref);
      for (size_t i = 0; i < g.size(); ++i) ASSERT_NEAR(g[i], g_ref[i], 1e-4 * g_max) << i;
    }
  }
}

// The float model written as a WeightStore loads as an inference Model whose logits are the
// training forward pass's: both compute the same function.
TEST(Transformer, InferenceOnTheWrittenModelGivesTheTrainingLoss) {
  Transformer<float> model(TinyConfig(), false);
  Randomize(&model, 9);
  Metadata metadata;
  metadata.Set("general.architecture", MetaValue::String("llama"));
  WeightStore store = ToWeightStore(model, metadata);
  auto back = FromWeightStore(store);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->params(), model.params());

  const std::vector<int32_t> tokens = {1, 4, 2, 9, 3, 5};
  const std::vector<int32_t> targets = {4, 2, 9, 3, 5, 8};
  const float loss = model.ForwardBackward(tokens, targets, 1, 6, nullptr);
  auto inference = Model::FromStore(std::move(store), false);
  ASSERT_TRUE(inference.ok()) << inference.status().message();
  ContextOptions o;
  o.n_ctx = 16;
  o.all_logits = true;
  o.kv_type_k = o.kv_type_v = DType::kF32;
  auto ctx = Context::Create(**inference, o);
  ASSERT_TRUE(ctx.ok());
  ASSERT_TRUE((*ctx)->Eval(tokens).ok());
  double nll = 0;
  for (int64_t t = 0; t < 6; ++t) {
    std::span<const float> l = (*ctx)->logits_at(t);
    double z = 0, max = -1e30;
    for (float v : l) max = std::max(max, static_cast<double>(v));
    for (float v : l) z += std::exp(v - max);
    nll += std::log(z) + max - l[static_cast<size_t>(targets[t])];
  }
  EXPECT_NEAR(loss, nll / 6, 1e-5);
}

}  // namespace
}  // namespace slimlm::train
