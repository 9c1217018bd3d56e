// FdPoll: libuv readiness polling of a descriptor that a wrapped object owns (TunDevice,
// UdpSocket), with a close that is safe when the Node environment goes away.
//
// uv_close stops the watcher at once (and libuv forgets events already polled for the
// descriptor), so the descriptor may be closed right after; but the handle's memory must live
// until libuv's close callback, which comes on a later loop turn, when the object may be gone.
// So the handle lives apart from the object and its close callback frees it. That callback is
// this addon's code: if the environment ended first (a worker terminates, an embedder tears
// down) without waiting for it, libuv would call into an addon already unloaded. An async
// cleanup hook, registered with the handle, closes the handle at teardown and holds the
// environment (and so the addon) until the close callback has run and removed the hook.
#ifndef LISPNODE_FD_POLL_H_
#define LISPNODE_FD_POLL_H_

#include <node_api.h>
#include <uv.h>

namespace lispnode {

class FdPoll {
 public:
  // Runs on readiness (or an error: status < 0) inside a handle scope of the environment, with
  // the `owner` given to Init.
  using Callback = void (*)(napi_env env, void* owner, int status, int events);

  // Which step of Init failed.
  enum class InitFailure { kNone, kEventLoop, kMemory, kPollInit };

  FdPoll() = default;
  FdPoll(const FdPoll&) = delete;
  FdPoll& operator=(const FdPoll&) = delete;
  ~FdPoll() { Close(); }

  bool created() const { return handle_ != nullptr; }

  // Creates the handle for `fd`, unless there is one already. Returns 0, or a libuv error code:
  // UV_EINVAL without an event loop, UV_ENOMEM without memory or a cleanup hook, or
  // uv_poll_init's error; *failure (optional) says which step failed.
  int Init(napi_env env, int fd, Callback callback, void* owner, InitFailure* failure = nullptr);

  // uv_poll_start with `events` (UV_READABLE | UV_WRITABLE); libuv's error code. Needs Init.
  int Start(int events);
  // uv_poll_stop; nothing without a handle.
  void Stop();
  // Idempotent; the descriptor may be closed right after. Callbacks end here.
  void Close();

 private:
  struct Handle;

  static void OnEvent(uv_poll_t* poll, int status, int events);
  static void OnClosed(uv_handle_t* handle);
  static void OnTeardown(napi_async_cleanup_hook_handle hook, void* data);

  Handle* handle_ = nullptr;
};

}  // namespace lispnode

#endif  // LISPNODE_FD_POLL_H_
