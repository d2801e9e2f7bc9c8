#include "bpf_object_binding.h"

#include <memory>
#include <optional>

#include "args.h"
#include "bpf_object.h"
#include "errors.h"

// The JS object is a plain object whose methods share one BpfObject. When the
// last method is garbage-collected the BpfObject is destroyed, which closes it
// like close() does; the daemon keeps a reference and closes explicitly.
using SharedObject = std::shared_ptr<BpfObject>;

template <typename Method>
static void AddMethod(Napi::Object target, const char* name, Method method) {
  target.Set(name, GuardedFunction(target.Env(), name, method));
}

static Napi::Object WrapObject(Napi::Env env, SharedObject object) {
  Napi::Object js = Napi::Object::New(env);
  AddMethod(js, "mapFd", [object](const Napi::CallbackInfo& info) -> Napi::Value {
    RequireArgs(info, 1, "mapFd(name)");
    return Napi::Number::New(info.Env(), object->MapFd(StringArg(info, 0, "name")));
  });
  AddMethod(js, "attachSkLookup", [object](const Napi::CallbackInfo& info) -> Napi::Value {
    RequireArgs(info, 1, "attachSkLookup(program, netnsPath?)");
    std::string program = StringArg(info, 0, "program");
    std::string netns = StringArgOr(info, 1, "netnsPath", "/proc/self/ns/net");
    return Napi::Number::New(info.Env(), object->AttachSkLookup(program, netns));
  });
  AddMethod(js, "attachTcIngress", [object](const Napi::CallbackInfo& info) -> Napi::Value {
    RequireArgs(info, 2, "attachTcIngress(program, ifindex)");
    int ifindex = static_cast<int>(Uint32Arg(info, 1, "ifindex"));
    return Napi::Number::New(info.Env(), object->AttachTcIngress(StringArg(info, 0, "program"), ifindex));
  });
  AddMethod(js, "attachVerdict", [object](const Napi::CallbackInfo& info) -> Napi::Value {
    RequireArgs(info, 2, "attachVerdict(program, map)");
    object->AttachVerdict(StringArg(info, 0, "program"), StringArg(info, 1, "map"));
    return info.Env().Undefined();
  });
  AddMethod(js, "detach", [object](const Napi::CallbackInfo& info) -> Napi::Value {
    RequireArgs(info, 1, "detach(linkId)");
    object->Detach(Uint32Arg(info, 0, "linkId"));
    return info.Env().Undefined();
  });
  AddMethod(js, "close", [object](const Napi::CallbackInfo& info) -> Napi::Value {
    object->Close();
    return info.Env().Undefined();
  });
  return js;
}

// Opening and verifying an object takes milliseconds to seconds: off the JS thread.
class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, std::string path)
      : Napi::AsyncWorker(env, "bpfredir:loadObject"), path_(std::move(path)), deferred_(env) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      object_ = BpfObject::Load(path_);
    } catch (const SysError& e) {
      error_ = e;
    }
  }

  void OnOK() override {
    Napi::HandleScope scope(Env());
    if (error_) {
      deferred_.Reject(ToJsError(Env(), *error_).Value());
    } else {
      deferred_.Resolve(WrapObject(Env(), std::move(object_)));
    }
  }

 private:
  std::string path_;
  Napi::Promise::Deferred deferred_;
  std::unique_ptr<BpfObject> object_;
  std::optional<SysError> error_;
};

static Napi::Value LoadObject(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "loadObject(path)");
  auto* worker = new LoadWorker(info.Env(), StringArg(info, 0, "path"));
  Napi::Promise promise = worker->Promise();
  worker->Queue();  // the worker deletes itself when done
  return promise;
}

void InitBpfObject(Napi::Env env, Napi::Object exports) {
  exports.Set("loadObject", Napi::Function::New(env, LoadObject, "loadObject"));
}
