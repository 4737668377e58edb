// Raw IPv4 sending: we write the outer IPv4 + UDP header ourselves so a reply
// can come *from* whatever UDP port GWLB sent the flow from (GWLB varies its
// source port per flow; a bound UDP socket could only send from one).
#pragma once

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace gatehouse {

constexpr size_t kOuterHeaderLen = 28;  // IPv4 (no options) + UDP

// socket(AF_INET, SOCK_RAW, IPPROTO_RAW): IP_HDRINCL is implied. Needs
// CAP_NET_RAW. Returns the fd or -1 with `*error` set.
int OpenRawIPv4Socket(int sndbuf, std::string* error);

// Writes a 28-byte IPv4 + UDP header at `out`, immediately followed in
// memory by the `payload_len` payload bytes (so `out + 28` is the payload).
// Fills both checksums (the UDP one over the pseudo-header and payload:
// never zero, never stack garbage). Addresses and ports in host order.
void WriteIPv4UdpHeader(uint8_t* out, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
                        size_t payload_len, uint16_t ip_id, uint8_t ttl = 64);

}  // namespace gatehouse
