#include "tun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <napi.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <set>
#include <vector>

#include "addon.h"

namespace gatehouse {

namespace {

std::string ErrnoMessage(const std::string& what, const std::string& name) {
  const int e = errno;
  return what + " on " + name + ": " + strerror(e) + " (errno " + std::to_string(e) + ")";
}

bool FillIfreq(const std::string& name, ifreq* ifr, std::string* error) {
  memset(ifr, 0, sizeof *ifr);
  if (name.empty() || name.size() >= IFNAMSIZ) {
    *error = "interface name must be 1.." + std::to_string(IFNAMSIZ - 1) + " bytes: '" + name + "'";
    return false;
  }
  memcpy(ifr->ifr_name, name.data(), name.size());
  return true;
}

// Runs one interface ioctl on a throwaway AF_INET socket.
bool InterfaceIoctl(unsigned long request, const char* request_name, ifreq* ifr, std::string* error) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    *error = ErrnoMessage("socket(AF_INET, SOCK_DGRAM)", ifr->ifr_name);
    return false;
  }
  const bool ok = ioctl(s, request, ifr) == 0;
  if (!ok) *error = ErrnoMessage(std::string("ioctl(") + request_name + ")", ifr->ifr_name);
  close(s);
  return ok;
}

}  // namespace

int TunOpenQueue(const std::string& name, std::string* actual_name, std::string* error) {
  ifreq ifr;
  if (!FillIfreq(name, &ifr, error)) return -1;
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE;
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *error = ErrnoMessage("open(/dev/net/tun)", name);
    return -1;
  }
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    *error = ErrnoMessage("ioctl(TUNSETIFF)", name) +
             (errno == EINVAL ? " (an existing interface of that name that is not a multi-queue TUN?)" : "");
    close(fd);
    return -1;
  }
  *actual_name = ifr.ifr_name;
  return fd;
}

bool TunSetMtu(const std::string& name, int mtu, std::string* error) {
  ifreq ifr;
  if (!FillIfreq(name, &ifr, error)) return false;
  ifr.ifr_mtu = mtu;
  return InterfaceIoctl(SIOCSIFMTU, "SIOCSIFMTU", &ifr, error);
}

bool TunSetUp(const std::string& name, bool up, std::string* error) {
  ifreq ifr;
  if (!FillIfreq(name, &ifr, error)) return false;
  if (!InterfaceIoctl(SIOCGIFFLAGS, "SIOCGIFFLAGS", &ifr, error)) return false;
  if (up)
    ifr.ifr_flags |= IFF_UP;
  else
    ifr.ifr_flags &= ~IFF_UP;
  return InterfaceIoctl(SIOCSIFFLAGS, "SIOCSIFFLAGS", &ifr, error);
}

// ---- JavaScript binding: tunCreate / tunSetMtu / tunSetUp / tunClose ----

namespace {

// The queue fds tunCreate handed out and tunClose has not closed yet.
// tunClose only ever closes these, so a stale or forged `fds` array can
// never close a descriptor some other part of the process owns.
std::mutex g_owned_mutex;
std::set<int> g_owned_fds;

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString())
    throw Napi::TypeError::New(info.Env(), std::string("expected a string for ") + what);
  return info[i].As<Napi::String>().Utf8Value();
}

int ArgInt(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string("expected a number for ") + what);
  return info[i].As<Napi::Number>().Int32Value();
}

Napi::Value TunCreateJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = ArgString(info, 0, "name");
  const int queues = ArgInt(info, 1, "queues");
  const int mtu = ArgInt(info, 2, "mtu");
  if (queues < 1 || queues > 256) throw Napi::RangeError::New(env, "queues must be 1..256");

  std::vector<int> fds;
  std::string actual = name, error;
  auto fail = [&]() {
    for (int fd : fds) close(fd);
    return Napi::Error::New(env, error);
  };
  for (int q = 0; q < queues; q++) {
    int fd = TunOpenQueue(actual, &actual, &error);
    if (fd < 0) throw fail();
    fds.push_back(fd);
  }
  if (!TunSetMtu(actual, mtu, &error) || !TunSetUp(actual, true, &error)) throw fail();

  Napi::Array arr = Napi::Array::New(env, fds.size());
  {
    std::lock_guard<std::mutex> lock(g_owned_mutex);
    for (size_t i = 0; i < fds.size(); i++) {
      g_owned_fds.insert(fds[i]);
      arr.Set(uint32_t(i), fds[i]);
    }
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("name", actual);
  out.Set("fds", arr);
  return out;
}

Napi::Value TunSetMtuJs(const Napi::CallbackInfo& info) {
  std::string error;
  if (!TunSetMtu(ArgString(info, 0, "name"), ArgInt(info, 1, "mtu"), &error))
    throw Napi::Error::New(info.Env(), error);
  return info.Env().Undefined();
}

Napi::Value TunSetUpJs(const Napi::CallbackInfo& info) {
  if (info.Length() < 2 || !info[1].IsBoolean())
    throw Napi::TypeError::New(info.Env(), "expected a boolean for up");
  std::string error;
  if (!TunSetUp(ArgString(info, 0, "name"), info[1].As<Napi::Boolean>().Value(), &error))
    throw Napi::Error::New(info.Env(), error);
  return info.Env().Undefined();
}

Napi::Value TunCloseJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "expected a tun object");
  Napi::Value v = info[0].As<Napi::Object>().Get("fds");
  if (!v.IsArray()) throw Napi::TypeError::New(env, "expected tun.fds to be an array");
  Napi::Array fds = v.As<Napi::Array>();
  std::lock_guard<std::mutex> lock(g_owned_mutex);
  for (uint32_t i = 0; i < fds.Length(); i++) {
    Napi::Value fv = fds.Get(i);
    if (!fv.IsNumber()) continue;
    const int fd = fv.As<Napi::Number>().Int32Value();
    if (g_owned_fds.erase(fd)) close(fd);
  }
  return env.Undefined();
}

}  // namespace

void InitTun(Napi::Env env, Napi::Object exports) {
  exports.Set("tunCreate", Napi::Function::New(env, TunCreateJs, "tunCreate"));
  exports.Set("tunSetMtu", Napi::Function::New(env, TunSetMtuJs, "tunSetMtu"));
  exports.Set("tunSetUp", Napi::Function::New(env, TunSetUpJs, "tunSetUp"));
  exports.Set("tunClose", Napi::Function::New(env, TunCloseJs, "tunClose"));
}

}  // namespace gatehouse
