/**
 * The contract between TypeScript and the native packet core (native/src/).
 *
 * Everything that crosses the boundary is described here, and only here.
 * The raw addon is loaded once (loadNative) and wrapped by small classes in
 * this folder that validate input and give clear, coded errors; nothing
 * outside src/native/ touches the raw addon.
 *
 * No JavaScript runs per packet: engines own their sockets and threads, and
 * TypeScript reads their counters (live BigUint64Arrays over native memory)
 * and receives batched events.
 */

/** A live view of an engine's counters; values[i] is the counter names[i]. */
export interface NativeCounters {
  readonly names: readonly string[];
  readonly values: BigUint64Array;
}

/** Result of the native GENEVE decoder (for tests: it must agree with src/geneve). */
export type NativeGeneveResult =
  | {
      ok: true;
      headerLength: number;
      protocol: number;
      eni: bigint;
      attachment: bigint;
      cookie: number;
    }
  | { ok: false; reason: string };

/**
 * Echo reflector: the harness ceiling and the lab's passthrough appliance.
 * Receives GENEVE on bind:port with `threads` SO_REUSEPORT sockets (one
 * thread each, recvmmsg) and sends every datagram back the way a gwlbtun
 * target does: outer IPv4 addresses swapped, UDP ports kept as received, the
 * GENEVE header and inner packet untouched, through a raw socket (sendmmsg).
 * With `validate`, malformed GENEVE is counted by reason and dropped instead.
 */
export interface ReflectorOptions {
  bind: string; // IPv4 address to bind
  port: number; // UDP port, normally 6081
  threads: number; // 1..16 sockets/threads
  rcvbuf: number; // bytes, 0 = default
  sndbuf: number; // bytes, 0 = default
  batch: number; // datagrams per recvmmsg/sendmmsg, 1..1024
  validate: boolean;
}
/**
 * Counter names, in order: rx_packets, rx_bytes, tx_packets, tx_bytes,
 * tx_errors, rx_overflow, dropped_malformed, then one `malformed_<reason>`
 * per GENEVE_REASONS entry.
 */
export interface NativeReflector {
  readonly counters: NativeCounters;
  /** The bound port (useful when port 0 was asked for). */
  readonly port: number;
  /** Stops and joins the threads, closes the sockets. Idempotent. */
  stop(): void;
}

/**
 * One packet the generator sends over and over: a complete GENEVE datagram
 * payload (GENEVE header + inner IP packet) built in TypeScript.
 */
export interface GeneratorTemplate {
  bytes: Uint8Array;
  /**
   * -1 for a good flow; otherwise the index in GENEVE_REASONS of the defect
   * this malformed template carries (sent verbatim, never stamped).
   */
  malformedKind: number;
  /** Good templates: offset (from the start of bytes) of the 24-byte stamp area (zeros in the template). */
  stampOffset: number;
  /** Good templates: offset of the inner L4 checksum that covers the stamp, or -1 for none. */
  checksumOffset: number;
  /** Good templates: offset of the inner IPv4 TTL / IPv6 hop limit (for ignoreTtl). */
  ttlOffset: number;
  /** Good templates: offset of the inner IPv4 header checksum, or -1 for IPv6. */
  ipChecksumOffset: number;
  /** Index into GeneratorOptions.sourcePorts: which socket sends this template. */
  socket: number;
}

/**
 * The emulator's load generator and checker. Good templates are sent round
 * robin (sequence number n goes to good template n % goodCount); malformed
 * templates are mixed in at `malformedPerMillion`. Each good packet carries a
 * 24-byte stamp at stampOffset: u64 run tag, u64 sequence, u64 send time in
 * CLOCK_MONOTONIC ns (big-endian), with the L4 checksum fixed up
 * incrementally. Replies are received on bind:replyPort and checked: from
 * target; GENEVE valid; GENEVE header byte-identical to the template's; inner
 * packet byte-identical to what was sent (TTL and IPv4 header checksum
 * ignored with ignoreTtl); not a duplicate. Malformed templates that come
 * back are recognised by their bytes and counted per kind.
 */
export interface GeneratorOptions {
  target: string; // IPv4 address of the target
  targetPort: number; // 6081
  bind: string; // local IPv4 address
  replyPort: number; // local port replies arrive on (6081: targets reply to GWLB's 6081)
  sourcePorts: number[]; // one UDP socket per entry; 0 = ephemeral
  templates: GeneratorTemplate[];
  malformedPerMillion: number; // 0..1_000_000 share of malformed among all sent
  rate: number; // packets per second, 0 = flood
  count: number; // total packets to send (good + malformed), 0 = no limit
  durationMs: number; // stop sending after this long, 0 = no limit
  batch: number; // 1..1024
  ignoreTtl: boolean;
  rcvbuf: number;
  sndbuf: number;
  runTag: bigint; // random per run: replies from an earlier run are not counted
}
/**
 * Counter names, in order: sent, sent_bytes, sent_malformed, send_errors,
 * received, received_bytes, valid, invalid_not_from_target, invalid_geneve,
 * invalid_unknown_flow, invalid_header_mismatch, invalid_inner_mismatch,
 * invalid_duplicate, rx_overflow, sender_done (1 once sending finished),
 * then `sent_malformed_<reason>` and `returned_malformed_<reason>` for every
 * GENEVE reason (13 + 13), then `invalid_geneve_<reason>` for every reason.
 */
export interface NativeGenerator {
  readonly counters: NativeCounters;
  /**
   * Latency histogram of valid replies, live: bucket i counts samples in
   * [latencyBucketLowerNs(i), latencyBucketLowerNs(i+1)). Log-linear: 16
   * sub-buckets per power of two, starting at 0 ns; 64*16 buckets.
   */
  readonly latency: BigUint64Array;
  /** Largest latency seen, ns (live: a 1-element array). */
  readonly latencyMax: BigUint64Array;
  /** Stops sending and receiving, joins threads, closes sockets. Idempotent. */
  stop(): void;
}

/**
 * The lab's Gateway Load Balancer. Reads inner packets from a TUN device
 * (routed there by the lab), keeps a symmetric flow table (one entry serves
 * both directions; key = inner 5-tuple, ICMP by id), gives each new flow a
 * random cookie and a source port from sourcePortLow..High, encapsulates
 * exactly as GWLB does (options 1, 2, 3 of class 0x0108, VNI 0) and sends to
 * target:6081 from bind:<flow port> through a raw socket. Replies received
 * on bind:6081 are checked (from target, valid GENEVE, cookie of a known
 * flow, ENI and attachment equal to what was sent, from the flow's own
 * source port (targets mirror ports), inner 5-tuple of that flow) and the inner packet is written back to the TUN, which the kernel
 * routes on.
 */
export interface GatewayOptions {
  tunName: string; // an existing (multi-queue) or new TUN interface in this namespace; the gateway brings it up
  bind: string; // the gateway's IPv4 address toward the appliance
  target: string; // the appliance's IPv4 address
  port: number; // 6081
  eni: bigint; // endpoint ENI id (option 1)
  attachment: bigint; // attachment id (option 2)
  sourcePortLow: number;
  sourcePortHigh: number;
  flowIdleMs: number; // flow entries expire after this long without a packet
  onFlowEvents: (events: GatewayFlowEvent[]) => void; // batched, from a thread-safe function
}
export interface GatewayFlowEvent {
  type: 'new' | 'expired';
  protocol: number; // IP protocol number
  src: string; // as first seen
  dst: string;
  srcPort: number; // ICMP: echo id
  dstPort: number;
  cookie: number;
  sourcePort: number; // outer UDP source port given to the flow
  packets: number; // expired: both directions
  bytes: number;
}
/**
 * Counter names, in order: tun_rx_packets, tun_rx_bytes, encap_tx_packets,
 * encap_tx_bytes, tx_errors, udp_rx_packets, udp_rx_bytes, tun_tx_packets,
 * tun_tx_bytes, flows_active, flows_created, flows_expired,
 * drop_unparsable_inner, drop_not_from_target, drop_unknown_flow,
 * drop_option_mismatch, drop_tuple_mismatch, drop_not_routed, drop_wrong_port,
 * rx_overflow, then
 * `malformed_<reason>` per GENEVE reason.
 */
export interface NativeGateway {
  readonly counters: NativeCounters;
  /** Stops and joins both threads, closes the fds, releases the event callback. Idempotent. */
  stop(): void;
  /**
   * Settles once stop() ran and every queued onFlowEvents batch (the last
   * ones are sent while the threads stop) has been delivered.
   */
  readonly closed: Promise<void>;
}

/** A TUN interface owned by this process (IFF_TUN | IFF_NO_PI, multi-queue). */
export interface NativeTun {
  readonly name: string;
  /** One fd per queue, O_NONBLOCK | O_CLOEXEC. */
  readonly fds: number[];
}

/**
 * The inner flow key parser (native/src/flow_key.h), exported for tests and
 * src/native/flow-key.ts. `key` is the symmetric key: side a is the lower
 * (address, port), so both directions of a conversation give the same key;
 * `reversed` says this packet goes from b to a. ICMP/ICMPv6 echo: srcPort is
 * the identifier, dstPort 0, key.aPort the identifier. Reasons: FLOW_KEY_REASONS
 * in src/native/flow-key.ts.
 */
export type NativeFlowKeyResult =
  | {
      ok: true;
      version: 4 | 6;
      protocol: number; // upper-layer protocol (after IPv6 extension headers / AH)
      src: string;
      dst: string;
      srcPort: number;
      dstPort: number;
      reversed: boolean;
      key: { a: string; aPort: number; b: string; bPort: number; hash: bigint };
      icmpType: number | null; // ICMP/ICMPv6 with its header in this packet
      fragment: 'none' | 'first' | 'later';
      fragmentId: number; // 0 unless a fragment
      fragmentOffset: number; // bytes
      moreFragments: boolean;
      portsFrom: 'header' | 'tracker' | 'unknown'; // later fragments: remembered from the first, or unknown (0)
    }
  | { ok: false; reason: string };

/** Opaque per-caller memory of first fragments' ports (made by newFragmentTracker). */
export interface NativeFragmentTracker {
  readonly __brand?: 'NativeFragmentTracker';
}

/** The raw addon's exports. */
export interface NativeAddon extends NativeTunnelAddon, NativeInspectAddon, NativeHttpRelayAddon {
  decodeGeneve(datagram: Uint8Array): NativeGeneveResult;
  /** Builds outer IPv4+UDP in front of payload with both checksums, as the raw sender does (for tests). */
  buildIPv4Udp(src: string, dst: string, sport: number, dport: number, payload: Uint8Array): Buffer;
  startReflector(opts: ReflectorOptions): NativeReflector;
  startGenerator(opts: GeneratorOptions): NativeGenerator;
  startGateway(opts: GatewayOptions): NativeGateway;
  /** Creates (or attaches to) TUN `name` with `queues` queues; mtu set, link up. */
  tunCreate(name: string, queues: number, mtu: number): NativeTun;
  tunSetMtu(name: string, mtu: number): void;
  tunSetUp(name: string, up: boolean): void;
  /** Closes every queue fd; a non-persistent TUN disappears with its last fd. */
  tunClose(tun: NativeTun): void;
  /** Never throws on packet bytes; later fragments use `tracker` when given. */
  parseFlowKey(packet: Uint8Array, tracker?: NativeFragmentTracker): NativeFlowKeyResult;
  newFragmentTracker(): NativeFragmentTracker;
}

// ---------------------------------------------------------------------------
// gatehouse tunnel: the GWLB target (drop-in for gwlbtun)
// ---------------------------------------------------------------------------

/** An IPv4 prefix (for --gwlb-cidr). */
export interface Ipv4Prefix {
  address: string;
  prefixLength: number;
}

/**
 * The GWLB target's packet core.
 *
 * Inbound: `udpThreads` SO_REUSEPORT sockets on bind:port (recvmmsg). Each
 * datagram: source checked against allowedSources (empty = any; else
 * drop_source_not_allowed) -> DecodeGeneve (malformed counted by reason,
 * dropped) -> endpoint by ENI id:
 *  - unknown ENI: if fewer than maxEndpoints are known, the core records it
 *    as pending, queues the packet (at most pendingQueue per endpoint and
 *    pendingBytes of inner packets over all endpoints, then queue_dropped)
 *    and emits one 'endpoint' event; else drop_endpoint_limit.
 *  - pending: queued (bounded) — TypeScript is creating its TUNs and running
 *    the CREATE hook, then calls attachEndpoint or rejectEndpoint.
 *  - rejected: dropped (drop_endpoint_rejected) until retryAfterMs has
 *    passed, then treated as unknown again (new event).
 *  - ready: the inner packet's symmetric flow key (ParseFlowKey: IPv4 IHL,
 *    IPv6 extension headers, ICMP by id, fragments follow their first) finds
 *    or creates the endpoint's flow entry (while fewer than maxFlows flows
 *    exist over all endpoints; else drop_flow_limit), which stores the GENEVE header
 *    exactly as received (all options, unknown ones too), GWLB's address and
 *    UDP ports; then the inner packet is written to the endpoint's gwi TUN.
 * Outbound: `tunThreads` threads read the gwo (and gwi, as gwlbtun allows)
 * TUN queues of every ready endpoint (epoll), look up the flow by the inner
 * packet's key (drop_no_flow if none), prepend the stored GENEVE header and
 * an outer IPv4/UDP header mirrored from what GWLB sent (addresses swapped,
 * ports kept: source = GWLB's port, destination = 6081), both checksums
 * correct, and send in batches on a raw socket (sendmmsg).
 * Flow entries idle longer than flowIdleMs are removed. Nothing calls
 * JavaScript per packet; events are batched (at most one call per ~50 ms).
 */
export interface TunnelOptions {
  bind: string; // IPv4 address for UDP 6081, '0.0.0.0' for any
  port: number; // 6081
  udpThreads: number; // 1..64
  udpAffinity: number[]; // CPU for UDP thread i (i-th entry); empty = no pinning
  tunThreads: number; // 1..64
  tunAffinity: number[];
  rcvbuf: number; // bytes, 0 = default
  sndbuf: number;
  batch: number; // 1..1024
  flowIdleMs: number; // -i (default 350 s)
  maxEndpoints: number; // endpoints known at once (pending + ready + rejected)
  pendingQueue: number; // packets held per pending endpoint
  pendingBytes: number; // inner-packet bytes held by all pending endpoints together
  maxFlows: number; // flows of all endpoints together (each ~115 bytes)
  allowedSources: Ipv4Prefix[]; // --gwlb-cidr; empty = any source
  hexdump: boolean; // -x: hex dump every packet to stderr (debugging only; slow)
  onEvents: (events: TunnelEvent[]) => void;
}

export interface TunnelEndpointEvent {
  type: 'endpoint';
  eni: bigint; // option 1
  attachment: bigint; // option 2 of the first packet
  source: string; // GWLB's address that sent it
}
export type TunnelEvent = TunnelEndpointEvent;

/** A snapshot of one endpoint, for idle timers and health. */
export interface TunnelEndpointInfo {
  eni: bigint;
  state: 'pending' | 'ready' | 'rejected';
  /** CLOCK_MONOTONIC ms (see monotonicMs) of the last packet in from GWLB, 0 if none. */
  lastInMs: number;
  /** ... of the last packet sent back to GWLB (read from its TUNs), 0 if none. */
  lastOutMs: number;
  flows: number;
  queued: number;
}

/**
 * Global counter names, in order: rx_packets, rx_bytes, tx_packets,
 * tx_bytes, tx_errors, rx_overflow, drop_source_not_allowed,
 * drop_endpoint_limit, drop_endpoint_rejected, queue_dropped,
 * drop_unparsable_inner, drop_no_flow, tun_write_errors, flows_active,
 * flows_created, flows_expired, endpoints_seen, dropped_malformed, then
 * `malformed_<reason>` per GENEVE reason.
 */
export interface NativeTunnel {
  readonly counters: NativeCounters;
  /**
   * Per worker thread, in order udp0..udp(N-1) then tun0..tun(M-1), each with
   * `<worker>_heartbeat_ms` (monotonicMs of its last loop turn; a live worker
   * turns at least every 100 ms) and `<worker>_packets`.
   */
  readonly workers: NativeCounters;
  /**
   * The endpoint's TUNs are ready (CREATE hook done): flush its queue into
   * gwi and start serving it. gwi/gwo: one fd per queue (tunThreads queues
   * each). Returns that endpoint's counters: rx_packets, rx_bytes,
   * tx_packets, tx_bytes, drop_no_flow, tun_write_errors, queue_dropped.
   */
  attachEndpoint(eni: bigint, gwi: number[], gwo: number[]): NativeCounters;
  /** Drop the endpoint's queue; drop its packets until retryAfterMs from now. */
  rejectEndpoint(eni: bigint, retryAfterMs: number): void;
  /**
   * Stop serving the endpoint: its fds leave every thread (when this
   * returns, no thread touches them, so the caller may close them), its
   * flows are forgotten; a later packet makes it unknown again (new event).
   */
  detachEndpoint(eni: bigint): void;
  endpoints(): TunnelEndpointInfo[];
  /** Stops and joins all threads, closes the sockets (not the TUN fds). Idempotent. */
  stop(): void;
}

export interface NativeTunnelAddon {
  startTunnel(opts: TunnelOptions): NativeTunnel;
  /** CLOCK_MONOTONIC in ms, the clock of heartbeats and lastIn/OutMs. */
  monotonicMs(): number;
}

/**
 * `gatehouse inspect`'s packet core: the GWLB target with verdicts per flow
 * and no TUN round trip (native/src/inspect.cc).
 *
 * Inbound as the tunnel (source check, DecodeGeneve, endpoint by ENI: a new
 * one is recorded while fewer than maxEndpoints are known, with one
 * 'endpoint' event; else drop_endpoint_limit). Then the inner packet's
 * symmetric flow key, within its endpoint (two endpoints' flows never
 * share an entry, even with the same 5-tuple), finds or creates the flow (while fewer than
 * maxFlows exist; else drop_flow_limit). The flow's first packet decides
 * which side is the client (for TCP: the side that sent the SYN; a flow
 * whose first packet is not a bare SYN is `midstream`, and its first
 * packet's source is taken as the client unless it is a SYN-ACK).
 * A flow's state decides what happens to each packet:
 *  - new: one 'packet' event (first: true) goes up; the packet is held.
 *  - asked (waiting for the first verdict): held.
 *  - inspect: packets without payload pass (the handshake); packets with
 *    payload (either direction) are held and each goes up as a 'packet'
 *    event, at most payloadUpcalls per flow (after that: held, no event;
 *    the first packet's event is not counted).
 *  - allow: sent back to GWLB at once (the datagram as received, outer
 *    IPv4/UDP mirrored, checksums correct); with `tap`, the first tapPackets
 *    server-to-client packets with payload are also copied up (tap: true).
 *  - drop: dropped (verdict_drop_packets).
 * Held packets: at most heldPerFlow per flow and heldBytes over all flows
 * (then held_dropped). A verdict of allow sends them in order; drop drops
 * them. Nothing calls JavaScript per packet: events are queued and handed
 * over in batches (a call is made as soon as the previous one was taken,
 * so the first packet of a flow waits about one event-loop turn).
 * Flows idle for flowIdleMs end with a 'flow-end' event.
 */
export interface InspectOptions {
  bind: string; // IPv4 address for UDP 6081, '0.0.0.0' for any
  port: number;
  udpThreads: number; // 1..64
  rcvbuf: number;
  sndbuf: number;
  batch: number; // 1..1024
  flowIdleMs: number;
  maxEndpoints: number;
  maxFlows: number; // all endpoints together
  heldPerFlow: number; // packets held per flow waiting for a verdict
  heldBytes: number; // inner bytes held by all flows together
  payloadUpcalls: number; // payload packets of one flow sent up while it is being inspected
  tapPackets: number; // server-to-client packets copied up from a tapped flow
  allowedSources: Ipv4Prefix[];
  onEvents: (events: InspectEvent[]) => void;
}

/** A flow as the core names it: pass both back with a verdict. */
export interface InspectFlowRef {
  flow: bigint; // engine-wide id, never reused
  handle: Uint8Array; // opaque (the flow key: inner 5-tuple and endpoint, 48 bytes)
}

/** The flow's addresses in its own orientation (client = the side that opened it). */
export interface InspectFlowTuple {
  eni: bigint;
  family: 4 | 6;
  protocol: number; // 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...
  client: string;
  clientPort: number; // ICMP echo: the identifier
  server: string;
  serverPort: number;
}

export interface InspectPacketEvent extends InspectFlowRef, InspectFlowTuple {
  type: 'packet';
  first: boolean; // the flow's first packet
  tap: boolean; // a copy from an allowed flow with tap (the packet was sent on)
  fromClient: boolean;
  midstream: boolean;
  tcpFlags: number; // TCP only, else 0
  seq: number; // TCP sequence number (unsigned 32-bit), else 0
  ack: number;
  payload: Uint8Array; // the L4 payload (TCP/UDP data; ICMP: the whole message); may be empty
  packet: Uint8Array; // the whole inner packet (to build a reject from)
}

export interface InspectFlowEndEvent extends InspectFlowRef, InspectFlowTuple {
  type: 'flow-end';
  verdict: 'asked' | 'inspect' | 'allow' | 'drop';
  midstream: boolean;
  pktsToServer: number;
  pktsToClient: number;
  bytesToServer: number; // inner packet bytes
  bytesToClient: number;
  startMs: number; // wall clock (Date.now() scale)
  endMs: number;
  reason: 'timeout' | 'endpoint' | 'shutdown';
}

export interface InspectEndpointEvent {
  type: 'endpoint';
  eni: bigint;
  attachment: bigint;
  source: string;
}

export type InspectEvent = InspectPacketEvent | InspectFlowEndEvent | InspectEndpointEvent;

export interface InspectVerdict extends InspectFlowRef {
  action: 'allow' | 'drop' | 'inspect';
  tap?: boolean; // allow only: copy server-to-client payload packets up (DNS answers)
}

export interface InspectEndpointInfo {
  eni: bigint;
  flows: number;
  lastSeenMs: number; // monotonicMs
  rxPackets: number;
  txPackets: number;
}

export interface NativeInspect {
  readonly counters: NativeCounters;
  /** Per UDP thread: `udp<i>_heartbeat_ms`, `udp<i>_packets`. */
  readonly workers: NativeCounters;
  /** Applies verdicts; returns how many flows were found (ended ones are skipped). */
  setVerdicts(verdicts: InspectVerdict[]): number;
  /**
   * Sends inner packets (e.g. TCP resets) to GWLB inside the flow's GENEVE
   * header (the last one received for it), outer header mirrored. Returns
   * how many were sent; 0 when the flow is gone.
   */
  inject(flow: bigint, handle: Uint8Array, packets: Uint8Array[]): number;
  /** Forgets an endpoint and its flows (flow-end events, reason 'endpoint'); a later packet makes it new again. */
  forgetEndpoint(eni: bigint): void;
  endpoints(): InspectEndpointInfo[];
  /** Stops and joins the threads; returns the flows still open (reason 'shutdown'). Idempotent. */
  stop(): InspectFlowEndEvent[];
}

export interface NativeInspectAddon {
  startInspect(opts: InspectOptions): NativeInspect;
}

// ---------------------------------------------------------------------------
// gatehouse proxy: the HTTP/1 byte mover (native/src/http_relay.cc)
// ---------------------------------------------------------------------------

/** Limits and deadlines of the relay, in bytes and milliseconds (checked in http-relay.ts). */
export interface HttpRelayOptions {
  maxHeadBytes: number; // a request head longer than this: client error 'head-too-large'
  maxResponseHeadBytes: number; // an upstream head longer than this: outcome 'bad-upstream-head'
  proxyProtocol: boolean; // each connection starts with a PROXY v1/v2 header (framed here, parsed in TypeScript)
  headerTimeoutMs: number; // a head (and the PROXY header) must be complete this long after its first byte
  idleTimeoutMs: number; // keep-alive idle, exchange and tunnel inactivity
  connectTimeoutMs: number;
  poolIdleMs: number; // an idle pooled upstream connection is closed after this long
  frontingTimeoutMs: number; // a tunnel's first client bytes must be judged within this
  tickMs: number; // how often deadlines are checked
  /**
   * Kept routes' and answered forwards' reports (routedDone, answeredDone:
   * records for the logs, nothing to act on) may wait this long to go up together, one call into JavaScript per
   * batch rather than per request; any other event, stopListening,
   * closeIdle or destroy takes them up at once. 0 (the default): every
   * turn's events go up at its end.
   */
  reportDelayMs?: number;
}

/**
 * A batch of `count` events: event i's numbers are at eventSlots()[9i ..
 * 9i+8] (kind, connection id, then up to seven numbers), its bytes at
 * payloads[i] (a head as a one-byte string, tunnel bytes as a Buffer, the
 * peer address; OPEN: [peer, PROXY header bytes or null]). http-relay.ts
 * decodes them.
 */
export type NativeRelayPayload = string | Buffer | [string, Buffer | null] | [string, string | null] | undefined;
export type NativeRelayEvents = (count: number, payloads: NativeRelayPayload[]) => void;

/** What an exact kept route repeats (see NativeHttpRelay.keepExact). */
export interface ExactRoute {
  method: 'GET' | 'HEAD';
  /** The client's request head, exactly as the relay framed it. */
  request: string;
  /** The head sent upstream for it. */
  upstreamHead: string;
  ip: string;
  port: number;
  /** The request target, for the log. */
  path: string;
  lifetimeMs: number;
  /** Each repeat's inactivity limit, as forward()'s idleMs (0: the relay's idleTimeoutMs). */
  idleMs: number;
}

/**
 * What an ingress kept route repeats (see NativeHttpRelay.keepIngress):
 * the request TypeScript decided (an exact route's fields: its head, the
 * head sent upstream for it, its target) and the facts that head was made
 * from, so the relay makes the head another request on it would get
 * (src/ingress/server/upstream-headers.ts).
 */
export interface IngressRoute extends ExactRoute {
  /** The request's Host, User-Agent and Referer values ('' without one): a request with others goes to TypeScript. */
  host: string;
  userAgent: string;
  referer: string;
  /** The route's path prefix: a repeat's path must be under it. */
  matchPrefix: string;
  /** Put before the target upstream ('' for none). */
  upstreamPrefix: string;
  /** The Host sent upstream, the client appended to X-Forwarded-For, the X-Forwarded-Proto value. */
  authority: string;
  client: string;
  proto: string;
  /** An unsigned route drops the client's Authorization. */
  stripAuthorization: boolean;
  /**
   * What a signed route signs with (null: unsigned): the parts
   * LatticeSigner.signingParts gives, and the signature's fields before
   * Authorization as upstream-headers.ts writes them ("X-Amz-Date: ...\r\n...").
   */
  signing: (SigningParts & { amzFields: string }) | null;
}

/**
 * A SigV4 signature's parts that do not depend on the request's method,
 * path and query (made by src/ingress/sigv4/lattice-signer.ts): the
 * canonical request is `METHOD\nURI\nQUERY\n` + canonicalRest, the string
 * to sign stringToSignPrefix + its hex SHA-256, and the Authorization value
 * authorizationPrefix + the hex HMAC-SHA256 of that under key.
 */
export interface SigningParts {
  /** The Unix second of the X-Amz-Date: the parts sign in it only. */
  readonly second: number;
  /** The day's signing key. */
  readonly key: Buffer;
  readonly stringToSignPrefix: string;
  readonly canonicalRest: string;
  readonly authorizationPrefix: string;
}

/**
 * The relay: accepts on its listeners, frames heads and bodies, moves
 * bytes; every decision is a command from TypeScript. Connection ids come
 * in the events; a command for an id that is gone (or in another state)
 * returns false (respond: -1) and does nothing.
 */
export interface NativeHttpRelay {
  /** Binds and listens on an IP literal; returns the bound port. Throws with `errno` set. */
  listen(ip: string, port: number): number;
  /** Stops accepting (connections already accepted go on). */
  stopListening(): void;
  /**
   * Writes the proxy's own reply; returns the bytes read from the client
   * since the last mark. -1 when the connection is gone or already past
   * the point of a reply (a body being relayed, an open tunnel, closing).
   */
  respond(id: number, reply: string, keepAlive: boolean): number;
  /**
   * Sends `head` (then the body: -1 chunked, else its length) to ip:port,
   * over a pooled connection when one is idle. No byte either way for
   * `idleMs` (0: the relay's idleTimeoutMs) ends the exchange as a timeout.
   * `flags` (RELAY_FORWARD): with answerHere, a plain answer (as a kept
   * route's: HTTP/1.1, no 1xx, framed by length or chunks) is rewritten by
   * the relay (hop-by-hop fields dropped, Connection: close unless the
   * client keeps the connection) and reported with the exchange's end in
   * one ANSWERED_DONE (kept for reportDelayMs like kept routes' reports),
   * or as ANSWERED before a DONE or CLOSED that is not a plain end; any
   * other answer comes up as RESPONSE.
   */
  forward(id: number, ip: string, port: number, head: string, bodyLength: number, retryable: boolean, idleMs: number, flags: number): boolean;
  /** The client's copy of the response head and how its body is framed (RELAY_BODY). */
  answer(id: number, head: string, bodyKind: number, length: number, keepAlive: boolean, reusable: boolean): boolean;
  /** Connects to ip:port; once connected writes `established` and holds the client's bytes for the fronting check. */
  tunnel(id: number, ip: string, port: number, established: string): boolean;
  allowTunnel(id: number): boolean;
  close(id: number): boolean;
  /**
   * Hands a connection waiting for its request's decision to another
   * server: the socket leaves the relay open (its fd), with what the client
   * sent after the head (`input`) and what the relay had not yet written to
   * it (`output`, to be written first). CLOSED follows for the id. Null
   * when the connection is gone or not waiting for a decision.
   */
  detach(id: number): { fd: number; input: Buffer; output: Buffer } | null;
  /**
   * Kept route: the connection's next requests that plainly repeat
   * `method prefix/...` (a GET or HEAD, no body, Connection naming nothing
   * but close/keep-alive, HTTP/1.1) go to ip:port without a REQUEST event,
   * their head rewritten as TypeScript would (Host = `host`; Via and
   * X-Forwarded-For lists appended with `via` / `forwarded` unless empty),
   * for `lifetimeMs` or until forgetRoutes(). They raise ROUTED (path) and,
   * for a plain answer rewritten there too, ANSWERED (status, Content-Type)
   * instead of REQUEST and RESPONSE. Anything less plain goes the usual way.
   */
  keepRoute(id: number, method: string, prefix: string, host: string, ip: string, port: number, via: string, forwarded: string, lifetimeMs: number): boolean;
  /**
   * An exact kept route (the ingress's), for a request that lets its
   * connection go on: the connection's next requests whose
   * head is `request` byte for byte go to ip:port as `upstreamHead`, with no
   * rewrite, for `lifetimeMs` or until forgetRoutes(), each exchange with
   * forward()'s `idleMs` (0: the relay's idleTimeoutMs); reported as keepRoute's
   * are (ROUTED with `path`, ANSWERED, ROUTED_DONE). A plain GET or HEAD only.
   */
  keepExact(id: number, method: string, request: string, upstreamHead: string, ip: string, port: number, path: string, lifetimeMs: number, idleMs: number): boolean;
  /**
   * An ingress kept route (IngressRoute above): the connection's next
   * requests with the same method, Host, User-Agent and Referer and a
   * plain target under `matchPrefix` go to ip:port with the head
   * upstream-headers.ts would make (their target and fields, and on a
   * signed route their own SigV4 signature, made within `second` only; the
   * last request sent again gets the head sent for it); reported as
   * keepRoute's are, for `lifetimeMs` or until forgetRoutes().
   * False when the connection is gone or `upstreamPrefix` is not a plain path.
   */
  keepIngress(id: number, route: IngressRoute): boolean;
  /** Every kept route is stale (the policy changed). */
  forgetRoutes(): void;
  /** Closes connections between requests (not one whose next head has begun: it is read and answered) and the pool; later ones close after their exchange. */
  closeIdle(): void;
  /** Closes everything and releases the relay's loop handles. */
  destroy(): void;
  stats(): { active: number; pooled: number; bytesIn: number; bytesOut: number };
  /** Where each batch's numbers are written (one array for the relay's life). */
  eventSlots(): Float64Array;
}

export interface NativeHttpRelayAddon {
  HttpRelay: new (options: HttpRelayOptions, onEvents: NativeRelayEvents) => NativeHttpRelay;
}
