#include "slimlm/serve/engine_loop.h"

#include <utility>

#include "slimlm/core/log.h"

namespace slimlm::serve {

std::vector<Event> RequestStream::Wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return !events_.empty() || finished_; });
  std::vector<Event> out(std::make_move_iterator(events_.begin()),
                         std::make_move_iterator(events_.end()));
  events_.clear();
  return out;
}

bool RequestStream::finished() const {
  std::lock_guard lock(mu_);
  return finished_;
}

Status RequestStream::failed() const {
  std::lock_guard lock(mu_);
  return failure_;
}

void RequestStream::Cancel() {
  {
    std::lock_guard lock(mu_);
    if (finished_ || cancel_sent_) return;
    cancel_sent_ = true;
  }
  loop_->RequestCancel(id_);
}

void RequestStream::Push(Event e) {
  {
    std::lock_guard lock(mu_);
    if (e.finish != FinishReason::kNone) finished_ = true;
    events_.push_back(std::move(e));
  }
  cv_.notify_all();
}

void RequestStream::Fail(Status s) {
  Event e;
  e.id = id_;
  e.finish = FinishReason::kCancelled;
  {
    std::lock_guard lock(mu_);
    failure_ = std::move(s);
  }
  Push(std::move(e));
}

Result<std::unique_ptr<EngineLoop>> EngineLoop::Start(const Model& model,
                                                      const SchedulerOptions& options,
                                                      ServeMetrics* metrics) {
  SLIMLM_ASSIGN_OR_RETURN(auto scheduler, Scheduler::Create(model, options));
  if (metrics != nullptr) {
    const Engine& engine = scheduler->engine();
    const double weights =
        static_cast<double>(model.PackedBytes() > 0 ? model.PackedBytes() : model.WeightBytes());
    const double kv = static_cast<double>(engine.KvCacheBytes());
    const double positions =
        static_cast<double>(scheduler->pool().n_blocks() * scheduler->pool().block_size());
    metrics->SetMemory(weights, kv, positions > 0 ? kv / positions : 0);
  }
  std::unique_ptr<EngineLoop> loop(new EngineLoop(std::move(scheduler), metrics, options.profile));
  loop->PublishStats();
  loop->thread_ = std::thread([l = loop.get()] { l->Run(); });
  return loop;
}

EngineLoop::EngineLoop(std::unique_ptr<Scheduler> scheduler, ServeMetrics* metrics,
                       const OpProfile* profile)
    : scheduler_(std::move(scheduler)), metrics_(metrics), profile_(profile) {}

EngineLoop::~EngineLoop() { Stop(); }

Result<std::shared_ptr<RequestStream>> EngineLoop::Submit(Request request) {
  auto stream = std::make_shared<RequestStream>();
  stream->loop_ = this;
  stream->submitted_ = std::chrono::steady_clock::now();
  std::future<Status> accepted;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return FailedPreconditionError("the server is shutting down");
    Pending p{std::move(request), stream, {}};
    accepted = p.accepted.get_future();
    pending_.push_back(std::move(p));
  }
  cv_.notify_all();
  SLIMLM_RETURN_IF_ERROR(accepted.get());
  return stream;
}

void EngineLoop::RequestCancel(int64_t id) {
  {
    std::lock_guard lock(mu_);
    cancels_.push_back(id);
  }
  cv_.notify_all();
}

void EngineLoop::CancelAll() {
  {
    std::lock_guard lock(mu_);
    cancel_all_ = true;
  }
  cv_.notify_all();
}

void EngineLoop::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

EngineLoopStats EngineLoop::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void EngineLoop::PublishStats(int64_t cancelled) {
  EngineLoopStats s;
  s.scheduler = scheduler_->stats();
  s.kv_blocks_total = scheduler_->pool().n_blocks();
  s.kv_blocks_used = s.kv_blocks_total - scheduler_->pool().FreeBlocks();
  s.in_flight = static_cast<int64_t>(streams_.size());
  std::lock_guard lock(mu_);
  s.cancelled = stats_.cancelled + cancelled;
  stats_ = s;
}

void EngineLoop::Measure(RequestStream& stream, const Event& e) {
  const auto now = std::chrono::steady_clock::now();
  auto seconds = [](auto d) { return std::chrono::duration<double>(d).count(); };
  if (e.new_tokens > 0) {
    if (stream.any_token_) {
      metrics_->OnNextToken(seconds(now - stream.last_token_));
    } else {
      metrics_->OnFirstToken(seconds(now - stream.submitted_));
    }
    stream.any_token_ = true;
    stream.last_token_ = now;
  }
  if (e.finish != FinishReason::kNone) metrics_->OnFinish(e, seconds(now - stream.submitted_));
}

void EngineLoop::Run() {
  std::vector<Pending> pending;
  std::vector<int64_t> cancels;
  std::vector<Event> events;
  std::vector<std::pair<std::shared_ptr<RequestStream>, Event>> deliveries;
  for (;;) {
    bool cancel_all = false;
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] {
        return stopping_ || cancel_all_ || !pending_.empty() || !cancels_.empty() ||
               !scheduler_->Idle();
      });
      pending.swap(pending_);
      cancels.swap(cancels_);
      cancel_all = std::exchange(cancel_all_, false);
      stopping = stopping_;
    }
    for (Pending& p : pending) {
      if (stopping) {
        p.accepted.set_value(FailedPreconditionError("the server is shutting down"));
        continue;
      }
      Result<int64_t> id = scheduler_->Submit(std::move(p.request));
      if (id.ok()) {
        p.stream->id_ = *id;
        streams_[*id] = p.stream;
      }
      p.accepted.set_value(id.status());
    }
    pending.clear();
    for (int64_t id : cancels) scheduler_->Cancel(id);
    cancels.clear();
    if (cancel_all || stopping) {
      for (const auto& [id, stream] : streams_) scheduler_->Cancel(id);
    }
    int64_t cancelled = 0;
    double step_seconds = 0;
    std::vector<std::shared_ptr<RequestStream>> failed;
    Status status = Status::Ok();
    deliveries.clear();
    if (!scheduler_->Idle()) {
      events.clear();
      const auto t0 = std::chrono::steady_clock::now();
      status = scheduler_->Step(&events);
      step_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      // Finished requests leave streams_ before anything is delivered, so that the stats a
      // client reads after its last event no longer count it.
      for (Event& e : events) {
        auto it = streams_.find(e.id);
        if (it == streams_.end()) continue;
        deliveries.emplace_back(it->second, std::move(e));
        if (deliveries.back().second.finish == FinishReason::kNone) continue;
        cancelled += deliveries.back().second.finish == FinishReason::kCancelled;
        streams_.erase(it);
      }
      if (!status.ok()) {
        // A broken engine ends every request with its error; the server keeps answering (each
        // new request will meet the same error or succeed).
        SLIMLM_LOG(kError, "engine step failed: {}", status.message());
        for (const auto& [id, stream] : streams_) {
          scheduler_->Cancel(id);
          failed.push_back(stream);
        }
        cancelled += static_cast<int64_t>(streams_.size());
        streams_.clear();
        events.clear();
        scheduler_->Step(&events).IgnoreError();  // Collects the cancelled requests' last events.
      }
    }
    PublishStats(cancelled);
    if (metrics_ != nullptr) {
      metrics_->OnStep(scheduler_->stats(), step_seconds);
      if (profile_ != nullptr && step_seconds > 0) metrics_->OnProfile(*profile_);
    }
    for (auto& [stream, e] : deliveries) {
      if (metrics_ != nullptr) Measure(*stream, e);
      stream->Push(std::move(e));
    }
    for (const auto& stream : failed) stream->Fail(status);
    if (stopping && scheduler_->Idle()) {
      std::lock_guard lock(mu_);
      for (Pending& p : pending_) {
        p.accepted.set_value(FailedPreconditionError("the server is shutting down"));
      }
      pending_.clear();
      return;
    }
  }
}

}  // namespace slimlm::serve
