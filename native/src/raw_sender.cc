#include "raw_sender.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "checksum.h"

namespace gatehouse {

int OpenRawIPv4Socket(int sndbuf, std::string* error) {
  int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW);
  if (fd < 0) {
    *error = std::string("socket(AF_INET, SOCK_RAW, IPPROTO_RAW): ") + strerror(errno) +
             (errno == EPERM ? " (needs CAP_NET_RAW)" : "");
    return -1;
  }
  if (sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  return fd;
}

void WriteIPv4UdpHeader(uint8_t* out, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
                        size_t payload_len, uint16_t ip_id, uint8_t ttl) {
  const size_t udp_len = 8 + payload_len;
  uint8_t* ip = out;
  ip[0] = 0x45;  // version 4, IHL 5
  ip[1] = 0;
  StoreBe16(ip + 2, uint16_t(20 + udp_len));
  StoreBe16(ip + 4, ip_id);
  StoreBe16(ip + 6, 0x4000);  // DF: GWLB never fragments, neither do we
  ip[8] = ttl;
  ip[9] = IPPROTO_UDP;
  StoreBe16(ip + 10, 0);
  StoreBe32(ip + 12, src);
  StoreBe32(ip + 16, dst);
  StoreBe16(ip + 10, ChecksumFinish(ChecksumPartial(ip, 20)));

  uint8_t* udp = out + 20;
  StoreBe16(udp, sport);
  StoreBe16(udp + 2, dport);
  StoreBe16(udp + 4, uint16_t(udp_len));
  StoreBe16(udp + 6, 0);
  // Pseudo-header: src, dst, zero + protocol, UDP length.
  uint32_t sum = ChecksumPartial(ip + 12, 8);
  sum += IPPROTO_UDP + uint32_t(udp_len);
  sum = ChecksumPartial(udp, udp_len, sum);
  uint16_t c = ChecksumFinish(sum);
  StoreBe16(udp + 6, c == 0 ? 0xffff : c);  // RFC 768: 0 means "no checksum"
}

}  // namespace gatehouse
