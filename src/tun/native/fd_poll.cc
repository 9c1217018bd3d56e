// See fd_poll.h.
#include "fd_poll.h"

#include <new>

namespace lispnode {

struct FdPoll::Handle {
  uv_poll_t poll;  // first: libuv's callbacks get its address
  FdPoll* owner_poll = nullptr;  // null once closing
  napi_env env = nullptr;
  Callback callback = nullptr;
  void* owner = nullptr;
  napi_async_cleanup_hook_handle cleanup_hook = nullptr;
};

int FdPoll::Init(napi_env env, int fd, Callback callback, void* owner, InitFailure* failure) {
  InitFailure ignored;
  if (failure == nullptr) failure = &ignored;
  *failure = InitFailure::kNone;
  if (handle_ != nullptr) return 0;
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    *failure = InitFailure::kEventLoop;
    return UV_EINVAL;
  }
  auto* handle = new (std::nothrow) Handle();
  if (handle == nullptr) {
    *failure = InitFailure::kMemory;
    return UV_ENOMEM;
  }
  int result = uv_poll_init(loop, &handle->poll, fd);
  if (result != 0) {
    delete handle;  // a failed init leaves nothing registered with the loop
    *failure = InitFailure::kPollInit;
    return result;
  }
  handle->owner_poll = this;
  handle->env = env;
  handle->callback = callback;
  handle->owner = owner;
  handle_ = handle;
  if (napi_add_async_cleanup_hook(env, OnTeardown, handle, &handle->cleanup_hook) != napi_ok) {
    handle->cleanup_hook = nullptr;
    Close();
    *failure = InitFailure::kMemory;
    return UV_ENOMEM;
  }
  return 0;
}

int FdPoll::Start(int events) {
  if (handle_ == nullptr) return UV_EINVAL;
  return uv_poll_start(&handle_->poll, events, OnEvent);
}

void FdPoll::Stop() {
  if (handle_ != nullptr) uv_poll_stop(&handle_->poll);
}

void FdPoll::Close() {
  Handle* handle = handle_;
  if (handle == nullptr) return;
  handle_ = nullptr;
  handle->owner_poll = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&handle->poll), OnClosed);
}

void FdPoll::OnEvent(uv_poll_t* poll, int status, int events) {
  auto* handle = reinterpret_cast<Handle*>(poll);
  if (handle->owner_poll == nullptr) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(handle->env, &scope) != napi_ok) return;
  handle->callback(handle->env, handle->owner, status, events);
  napi_close_handle_scope(handle->env, scope);
}

void FdPoll::OnClosed(uv_handle_t* uv_handle) {
  auto* handle = reinterpret_cast<Handle*>(uv_handle);
  if (handle->cleanup_hook != nullptr) napi_remove_async_cleanup_hook(handle->cleanup_hook);
  delete handle;
}

// The environment is going away with the handle still open.
void FdPoll::OnTeardown(napi_async_cleanup_hook_handle /*hook*/, void* data) {
  auto* handle = static_cast<Handle*>(data);
  if (handle->owner_poll != nullptr) handle->owner_poll->Close();
  // Otherwise it is closing already, and its close callback removes the hook.
}

}  // namespace lispnode
