/**
 * `gatehouse tunnel` flags -> validated options. The flags are gwlbtun's
 * (short and long forms as its getopt_long table has them: -c/--cmdnew,
 * -r/--cmddel, -t/--timeout, -i/--idle, -p/--port, -j/--json, -d/--debug,
 * -h/--help, --udpthreads, --udpaffinity, --tunthreads, --tunaffinity,
 * --logging; -x/--hex from its earlier releases), so a gwlbtun command line
 * works unchanged, plus gatehouse's own. Where gwlbtun takes anything
 * (atoi, unknown logging entries ignored) we refuse with a message naming
 * the flag and what it allows. Pure apart from checking the hook files.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { choiceFlag, flagLabelIn, intFlag, invalidFlag, parseFlags, textFlag, type FlagValues } from '../cli/flags';
import { GatehouseError } from '../errors';
import type { Ipv4Prefix } from '../native/binding';
import { DEFAULT_LOG_LEVEL, LOG_LEVELS, TUNNEL_LOG_SECTIONS, parseLoggingSpec, type LogFormat, type LoggingConfig, type TunnelLogSection } from '../observe/log';

export const TUNNEL_FLAGS = {
  // gwlbtun's flags
  cmdnew: { type: 'string', short: 'c' },
  cmddel: { type: 'string', short: 'r' },
  timeout: { type: 'string', short: 't' },
  idle: { type: 'string', short: 'i' },
  port: { type: 'string', short: 'p' },
  json: { type: 'boolean', short: 'j' },
  'status-only': { type: 'boolean', short: 's' },
  debug: { type: 'boolean', short: 'd' },
  hex: { type: 'boolean', short: 'x' },
  udpthreads: { type: 'string' },
  udpaffinity: { type: 'string' },
  tunthreads: { type: 'string' },
  tunaffinity: { type: 'string' },
  logging: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  // readable aliases of -c and -r
  createscript: { type: 'string' },
  destroyscript: { type: 'string' },
  // gatehouse's own
  'hook-timeout': { type: 'string' },
  'max-endpoints': { type: 'string' },
  'max-flows': { type: 'string' },
  'endpoint-rate': { type: 'string' },
  'gwlb-cidr': { type: 'string' },
  bind: { type: 'string' },
  'log-format': { type: 'string' },
  rcvbuf: { type: 'string' },
  sndbuf: { type: 'string' },
} as const;

export type TunnelFlag = keyof typeof TUNNEL_FLAGS;

export const TUNNEL_DEFAULTS = {
  endpointIdleTimeoutS: 0, // gwlbtun: never time out endpoints
  flowIdleTimeoutS: 350, // gwlbtun, and GWLB's default TCP idle timeout
  hookTimeoutS: 30,
  maxEndpoints: 64,
  maxFlows: 2_000_000,
  endpointRatePerMinute: 30,
  bind: '0.0.0.0',
  socketBuffer: 8 * 1024 * 1024,
} as const;

/** The native core's limit per thread kind (src/native/binding.ts TunnelOptions). */
export const MAX_THREADS = 64;
export const MAX_CPU = 1023;

export interface TunnelCliOptions {
  /** -c: absolute path of an executable file, run as `<file> CREATE gwi gwo eni`. */
  createScript: string | undefined;
  /** -r: likewise with DESTROY. */
  destroyScript: string | undefined;
  /** -t: destroy an endpoint after this long without packets either way; 0 = never. */
  endpointIdleTimeoutS: number;
  /** -i: flow cache idle timeout; should be at least GWLB's. */
  flowIdleTimeoutS: number;
  /** -p: health port; undefined = no health server (gwlbtun's default, and -p 0). */
  healthPort: number | undefined;
  /** -j: detailed health as JSON instead of text. */
  healthJson: boolean;
  /** False with -s: the health answer is the status code only. */
  healthDetails: boolean;
  /** -x: hex dump of packets (slow; debugging). */
  hexDump: boolean;
  /** -d, then --logging on top (later entries win); the raw --logging text is in `logging`. */
  logLevels: LoggingConfig<TunnelLogSection>;
  logging: string | undefined;
  debug: boolean;
  logFormat: LogFormat;
  /** Thread counts; with an affinity list, its length. */
  udpThreads: number;
  /** CPU for UDP thread i; empty = no pinning. */
  udpAffinity: number[];
  tunThreads: number;
  tunAffinity: number[];
  hookTimeoutS: number;
  /** Endpoints known at once. */
  maxEndpoints: number;
  /** Flows of all endpoints together; packets of new flows beyond it are dropped (drop_flow_limit). */
  maxFlows: number;
  /** New endpoints accepted per minute (a creation-rate limit). */
  endpointRatePerMinute: number;
  /** Sources allowed to send GENEVE; empty = any. */
  gwlbCidrs: Ipv4Prefix[];
  bind: string;
  rcvbuf: number;
  sndbuf: number;
}

export type TunnelCommandLine = TunnelCliOptions | { help: true };

/** "-t/--timeout" for flags with a short form, "--udpthreads" otherwise. */
export function flagLabel(flag: TunnelFlag): string {
  return flagLabelIn(TUNNEL_FLAGS, flag);
}

function invalid(flag: TunnelFlag, what: string, raw: string, detail = ''): GatehouseError {
  return invalidFlag(flagLabel(flag), what, raw, detail);
}

const text = (values: FlagValues, flag: TunnelFlag): string | undefined => textFlag(values, flag);

function integer(values: FlagValues, flag: TunnelFlag, fallback: number, min: number, max: number): number {
  return intFlag(values, flag, fallback, min, max, flagLabel(flag));
}

/** A hook file: must exist, be a regular file and be executable by us. Returns its absolute path. */
function hookFile(values: FlagValues, flag: TunnelFlag, alias: TunnelFlag): string | undefined {
  const raw = text(values, flag);
  const aliasRaw = text(values, alias);
  if (raw !== undefined && aliasRaw !== undefined) {
    throw new GatehouseError('ERR_USAGE', `gatehouse tunnel: ${flagLabel(flag)} and ${flagLabel(alias)} are the same setting; give one`);
  }
  const given = raw ?? aliasRaw;
  if (given === undefined) return undefined;
  const name = raw !== undefined ? flag : alias;
  const what = 'an executable file';
  if (given === '') throw invalid(name, what, given);
  const path = resolve(given);
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch (err) {
    // gwlbtun handed -c to a shell, so "script.sh arg" worked there; we run one file with the hook arguments.
    const shellHint = /\s/.test(given) ? '; it is run directly, not through a shell, so put extra arguments inside the script' : '';
    throw invalid(name, what, given, `: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}${shellHint}`);
  }
  if (!isFile) throw invalid(name, what, given, ': not a regular file');
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw invalid(name, what, given, ': not executable (chmod +x)');
  }
  return path;
}

/** gwlbtun's AFFIN: "1-2,4,7-8" -> [1, 2, 4, 7, 8]; repeats allowed (two threads on one core). */
export function parseCpuList(raw: string): number[] | undefined {
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(raw)) return undefined;
  const cpus: number[] = [];
  for (const part of raw.split(',')) {
    const [lo, hi = lo] = part.split('-').map(Number);
    if (lo > hi || hi > MAX_CPU) return undefined;
    for (let cpu = lo; cpu <= hi && cpus.length <= MAX_THREADS; cpu++) cpus.push(cpu);
  }
  return cpus.length <= MAX_THREADS ? cpus : undefined;
}

function affinity(values: FlagValues, flag: TunnelFlag): number[] {
  const raw = text(values, flag);
  if (raw === undefined) return [];
  const cpus = parseCpuList(raw);
  if (cpus === undefined) {
    throw invalid(flag, `a list of CPU numbers and ranges like 0,2-3 (CPUs 0 to ${MAX_CPU}, at most ${MAX_THREADS} threads)`, raw);
  }
  return cpus;
}

/** "192.0.2.0/24" -> { address, prefixLength }; undefined if not a prefix or host bits are set. */
export function parseIpv4Prefix(raw: string): Ipv4Prefix | undefined {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(raw);
  if (m === null || !isIPv4(m[1])) return undefined;
  const prefixLength = Number(m[2]);
  if (prefixLength > 32) return undefined;
  const value = m[1].split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
  const size = 2 ** (32 - prefixLength);
  if (value % size !== 0) return undefined;
  return { address: m[1], prefixLength };
}

/** --gwlb-cidr: comma-separated IPv4 prefixes (shared with `gatehouse inspect`). */
export function gwlbCidrs(values: FlagValues): Ipv4Prefix[] {
  const raw = text(values, 'gwlb-cidr');
  if (raw === undefined) return [];
  const parts = raw.split(',').map((s) => s.trim());
  const prefixes = parts.map(parseIpv4Prefix);
  const bad = prefixes.findIndex((p) => p === undefined);
  if (bad >= 0 || parts.length > 64) {
    const detail = bad >= 0 && parts[bad] !== undefined ? ` (${JSON.stringify(parts[bad])} is not one)` : '';
    throw invalid('gwlb-cidr', 'comma-separated IPv4 prefixes with no host bits set, like 10.0.0.0/16,192.0.2.0/24 (at most 64)', raw, detail);
  }
  return prefixes as Ipv4Prefix[];
}

function threads(values: FlagValues, countFlag: TunnelFlag, cpus: number[]): number {
  const count = integer(values, countFlag, defaultThreads(), 1, MAX_THREADS);
  // As gwlbtun: an affinity list takes precedence over the thread count.
  return cpus.length > 0 ? cpus.length : count;
}

/** gwlbtun's default: one thread of each kind per CPU this process may use. */
export function defaultThreads(): number {
  return Math.min(MAX_THREADS, Math.max(1, availableParallelism()));
}

export function parseTunnelOptions(argv: string[]): TunnelCommandLine {
  const { values } = parseFlags(argv, TUNNEL_FLAGS, 'gatehouse tunnel');
  if (values.help) return { help: true };

  const logging = text(values, 'logging');
  const debug = values.debug === true;
  // gwlbtun: -d is short for --logging all=debug; entries given with --logging come after, so they win.
  const spec = [debug ? 'all=debug' : '', logging ?? ''].filter(Boolean).join(',');
  const logFormat = choiceFlag(values, 'log-format', 'text', ['text', 'json'] as const);
  const bind = text(values, 'bind') ?? TUNNEL_DEFAULTS.bind;
  if (!isIPv4(bind)) throw invalid('bind', 'an IPv4 address (GWLB sends GENEVE over IPv4)', bind);
  const healthPort = integer(values, 'port', 0, 0, 65535);
  const udpAffinity = affinity(values, 'udpaffinity');
  const tunAffinity = affinity(values, 'tunaffinity');

  return {
    createScript: hookFile(values, 'cmdnew', 'createscript'),
    destroyScript: hookFile(values, 'cmddel', 'destroyscript'),
    endpointIdleTimeoutS: integer(values, 'timeout', TUNNEL_DEFAULTS.endpointIdleTimeoutS, 0, 86400),
    flowIdleTimeoutS: integer(values, 'idle', TUNNEL_DEFAULTS.flowIdleTimeoutS, 1, 86400),
    healthPort: healthPort === 0 ? undefined : healthPort,
    healthJson: values.json === true,
    healthDetails: values['status-only'] !== true,
    hexDump: values.hex === true,
    logLevels: parseLoggingSpec(spec, TUNNEL_LOG_SECTIONS),
    logging,
    debug,
    logFormat,
    udpThreads: threads(values, 'udpthreads', udpAffinity),
    udpAffinity,
    tunThreads: threads(values, 'tunthreads', tunAffinity),
    tunAffinity,
    hookTimeoutS: integer(values, 'hook-timeout', TUNNEL_DEFAULTS.hookTimeoutS, 1, 3600),
    maxEndpoints: integer(values, 'max-endpoints', TUNNEL_DEFAULTS.maxEndpoints, 1, 4096),
    maxFlows: integer(values, 'max-flows', TUNNEL_DEFAULTS.maxFlows, 1000, 100_000_000),
    endpointRatePerMinute: integer(values, 'endpoint-rate', TUNNEL_DEFAULTS.endpointRatePerMinute, 1, 10000),
    gwlbCidrs: gwlbCidrs(values),
    bind,
    rcvbuf: integer(values, 'rcvbuf', TUNNEL_DEFAULTS.socketBuffer, 0, 1 << 30),
    sndbuf: integer(values, 'sndbuf', TUNNEL_DEFAULTS.socketBuffer, 0, 1 << 30),
  };
}

export const TUNNEL_HELP = `Usage: gatehouse tunnel [options]
A Gateway Load Balancer target, drop-in for AWS's gwlbtun: GENEVE on UDP 6081
in, one pair of TUN interfaces per GWLB endpoint, hook scripts, health port.
Example: gatehouse tunnel -c /etc/gatehouse/hooks/create.sh -r /etc/gatehouse/hooks/destroy.sh -p 8080

gwlbtun's options:
  -h, --help              Print this help
  -c, --cmdnew FILE       Run FILE when an endpoint's interfaces are created (arguments below).
      --createscript FILE The same as -c.
  -r, --cmddel FILE       Run FILE when an endpoint times out and is about to be destroyed, and for
                          every endpoint on shutdown (arguments below).
      --destroyscript FILE  The same as -r.
  -t, --timeout SECS      Destroy an endpoint after SECS without a packet in either direction;
                          0 (the default) never destroys. 0 to 86400.
  -i, --idle SECS         Idle timeout of the flow cache; match (or exceed) GWLB's idle timeout.
                          Default 350. 1 to 86400.
  -p, --port PORT         Serve a health report on TCP port PORT (default: no health server).
  -j, --json              Health report details as JSON instead of text.
  -s, --status-only       Health answer is the HTTP status code only (200 or 503), no details.
  -d, --debug             Debug logging; short for --logging all=debug.
  -x, --hex               Hex dump of packets being processed (slow; for debugging).

Threading options:
      --udpthreads N      Threads receiving GENEVE (SO_REUSEPORT sockets). 1 to ${MAX_THREADS}.
      --udpaffinity LIST  One UDP thread per CPU listed, pinned to it; overrides --udpthreads.
      --tunthreads N      Threads reading the TUN interfaces (queues per interface). 1 to ${MAX_THREADS}.
      --tunaffinity LIST  One TUN thread per CPU listed, pinned to it; overrides --tunthreads.
  LIST is CPU numbers and ranges, e.g. 1-2,4,7-8 (CPUs 0 to ${MAX_CPU}). Without these options
  each kind gets one thread per CPU core, as gwlbtun does.

Logging options:
      --logging SPEC      section=level entries, comma separated, case-insensitive; later ones win.
                          Sections: ${TUNNEL_LOG_SECTIONS.join(' ')} all
                          Levels: ${LOG_LEVELS.join(' ')}
                          Default level: ${DEFAULT_LOG_LEVEL} (what gwlbtun's code does; its help says important).
      --log-format FORMAT text (default) or json: one line per event on stderr.

gatehouse's options:
      --hook-timeout SECS A hook still running after SECS is killed with its whole process group
                          and counts as failed. Default 30. 1 to 3600.
      --max-endpoints N   Endpoints known at once (served, being created, or refused for a while);
                          packets of more are dropped. Default 64, 1-4096.
      --max-flows N       Flows held at once over all endpoints (about 115 bytes each); packets
                          opening more are dropped and counted (drop_flow_limit). Default 2000000.
      --endpoint-rate N   New endpoints accepted per minute (rate limit). Default 30, 1-10000.
      --gwlb-cidr CIDRS   Accept GENEVE only from these IPv4 prefixes, comma separated, e.g. the
                          target subnet's CIDR (default: from any address).
      --bind ADDR         IPv4 address to receive GENEVE on (default 0.0.0.0).
      --rcvbuf BYTES      Receive socket buffer (default 8 MiB; 0 = the kernel's default).
      --sndbuf BYTES      Send socket buffer (default 8 MiB; 0 = the kernel's default).

Hook scripts (-c and -r):
On the first packet from a GWLB endpoint, gatehouse creates gwi-<X> and gwo-<X> and runs the -c
script; when -t expires, or on shutdown, it runs the -r script and removes the interfaces. At least
turn rp_filter off on gwi-<X> in the -c script. The script is started directly (no shell), as:
  FILE CREATE|DESTROY gwi-<X> gwo-<X> <ENI>
1: CREATE or DESTROY.
2: The ingress interface, gwi-<X>: packets from the endpoint come in here.
3: The egress interface, gwo-<X>: send packets back to GWLB out of here (gwi-<X> works too;
   two interfaces make routing and iptables easier).
4: The endpoint's ENI id as 17 lowercase hex digits, zero-padded (e.g. 00123456789abcdef), so
   vpce-<ENI> is the VPC endpoint id. (gwlbtun's help says base 16 without the width; it passes 17.)
<X> is the ENI id in base 60 (digits 0-9a-zA-X, most significant first) to fit Linux's 15-character
interface names. Examples: examples/hooks/ in the gatehouse package.
`;
