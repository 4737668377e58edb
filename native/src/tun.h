// TUN devices (Linux /dev/net/tun): IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE,
// so the payload of every read and write is one bare IP packet and several
// threads (or processes) can each own a queue of the same interface.
#pragma once

#include <string>

namespace gatehouse {

// Opens one queue of TUN `name`, creating the interface if it does not exist
// (a TUN made this way is not persistent: it disappears with its last queue)
// or attaching to it if it does (it must be a multi-queue TUN). The fd is
// O_NONBLOCK | O_CLOEXEC. Returns the fd, or -1 with `*error` naming the
// failing call and errno. `*actual_name` gets the kernel's name for it.
int TunOpenQueue(const std::string& name, std::string* actual_name, std::string* error);

// SIOCSIFMTU / SIOCSIFFLAGS through an AF_INET datagram socket in the
// caller's network namespace. Return false with `*error` set on failure.
bool TunSetMtu(const std::string& name, int mtu, std::string* error);
bool TunSetUp(const std::string& name, bool up, std::string* error);

}  // namespace gatehouse
