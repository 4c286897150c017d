// FunctionRef<R(Args...)>: a non-owning reference to a callable, two pointers wide.
//
// For hot paths that take a callback for the duration of one call (ThreadPool::Run):
// unlike std::function it never allocates. The callable must outlive the FunctionRef.
#ifndef SLIMLM_CORE_FUNCTION_REF_H_
#define SLIMLM_CORE_FUNCTION_REF_H_

#include <memory>
#include <type_traits>
#include <utility>

namespace slimlm {

template <typename Signature>
class FunctionRef;

template <typename R, typename... Args>
class FunctionRef<R(Args...)> {
 public:
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef> &&
                                                    std::is_invocable_r_v<R, F&, Args...>>>
  FunctionRef(F&& f)  // NOLINT: implicit by design, like std::function.
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* object, Args... args) -> R {
          return (*static_cast<std::add_pointer_t<std::remove_reference_t<F>>>(object))(
              std::forward<Args>(args)...);
        }) {}

  R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

 private:
  void* object_;
  R (*call_)(void*, Args...);
};

}  // namespace slimlm

#endif  // SLIMLM_CORE_FUNCTION_REF_H_
