/**
 * `gatehouse inspect` flags -> validated options. The tunnel flags that
 * still mean something without TUN interfaces keep their spelling, defaults
 * and limits from src/tunnel/options.ts (health -p/-j/-s, -i, -t, threads,
 * logging, limits, sockets); inspect adds the policy file and the EVE log.
 * Pure: files are opened by the command, not here.
 */
import { isIPv4 } from 'node:net';
import { resolve } from 'node:path';
import { flagLabelIn, invalidFlag, textFlag, intFlag, parseFlags, type FlagValues } from '../cli/flags';
import { GatehouseError } from '../errors';
import type { Ipv4Prefix } from '../native/binding';
import type { AnfWrapOptions } from './eve/anf';
import { DEFAULT_VERIFY_TIMEOUT_MS } from './names';
import { DEFAULT_LOG_LEVEL, LOG_LEVELS, TUNNEL_LOG_SECTIONS, parseLoggingSpec, type LogFormat, type LoggingConfig } from '../observe/log';
import { MAX_THREADS, TUNNEL_DEFAULTS, TUNNEL_FLAGS, defaultThreads, gwlbCidrs } from '../tunnel/options';

export const INSPECT_FLAGS = {
  policy: { type: 'string' },
  // the tunnel's flags that apply, same spelling
  port: TUNNEL_FLAGS.port,
  json: TUNNEL_FLAGS.json,
  'status-only': TUNNEL_FLAGS['status-only'],
  idle: TUNNEL_FLAGS.idle,
  timeout: TUNNEL_FLAGS.timeout,
  udpthreads: TUNNEL_FLAGS.udpthreads,
  logging: TUNNEL_FLAGS.logging,
  'log-format': TUNNEL_FLAGS['log-format'],
  'max-endpoints': TUNNEL_FLAGS['max-endpoints'],
  'max-flows': TUNNEL_FLAGS['max-flows'],
  'gwlb-cidr': TUNNEL_FLAGS['gwlb-cidr'],
  bind: TUNNEL_FLAGS.bind,
  rcvbuf: TUNNEL_FLAGS.rcvbuf,
  sndbuf: TUNNEL_FLAGS.sndbuf,
  debug: TUNNEL_FLAGS.debug,
  help: TUNNEL_FLAGS.help,
  // inspect's own
  eve: { type: 'string' },
  'eve-wrap': { type: 'string' },
  'firewall-name': { type: 'string' },
  'availability-zone': { type: 'string' },
  'verify-timeout': { type: 'string' },
} as const;

export type InspectFlag = keyof typeof INSPECT_FLAGS;

/**
 * Log sections: the tunnel's (so a gwlbtun --logging string still parses)
 * plus the policy (loads, reloads), the per-flow decisions and the EVE log.
 */
export const INSPECT_LOG_SECTIONS = [...TUNNEL_LOG_SECTIONS, 'policy', 'flow', 'eve'] as const;
export type InspectLogSection = (typeof INSPECT_LOG_SECTIONS)[number];

export const INSPECT_DEFAULTS = {
  firewallName: 'gatehouse',
  availabilityZone: 'local',
  verifyTimeoutMs: DEFAULT_VERIFY_TIMEOUT_MS,
} as const;

export interface InspectCliOptions {
  /** --policy: the policy file, as an absolute path. */
  policyFile: string;
  /** -t: forget an endpoint (and its flows) after this long without packets; 0 = never. */
  endpointIdleTimeoutS: number;
  /** -i: a flow with no packet for this long ends (and is logged); should be at least GWLB's. */
  flowIdleTimeoutS: number;
  /** -p: health and /metrics port; undefined = no server (-p 0 or not given). */
  healthPort: number | undefined;
  healthJson: boolean;
  /** False with -s: the health answer is the status code only. */
  healthDetails: boolean;
  /** -d, then --logging on top (later entries win). */
  logLevels: LoggingConfig<InspectLogSection>;
  logFormat: LogFormat;
  udpThreads: number;
  maxEndpoints: number;
  maxFlows: number;
  /** Sources allowed to send GENEVE; empty = any. */
  gwlbCidrs: Ipv4Prefix[];
  bind: string;
  rcvbuf: number;
  sndbuf: number;
  /** --eve: a file path, '-' for stdout, or undefined for no EVE log. */
  eve: string | undefined;
  /** --eve-wrap anf: each event wrapped as AWS Network Firewall does. */
  eveWrap: AnfWrapOptions | undefined;
  /** --verify-timeout: how long a verify_dns lookup may take before it counts as unresolved. */
  verifyTimeoutMs: number;
}

export type InspectCommandLine = InspectCliOptions | { help: true };

/** "-t/--timeout" for flags with a short form, "--eve" otherwise. */
export function inspectFlagLabel(flag: InspectFlag): string {
  return flagLabelIn(INSPECT_FLAGS, flag);
}

function invalid(flag: InspectFlag, what: string, raw: string, detail = ''): GatehouseError {
  return invalidFlag(inspectFlagLabel(flag), what, raw, detail);
}

function usage(message: string): GatehouseError {
  return new GatehouseError('ERR_USAGE', `gatehouse inspect: ${message} (see 'gatehouse inspect --help')`);
}

const text = (values: FlagValues, flag: InspectFlag): string | undefined => textFlag(values, flag);

function integer(values: FlagValues, flag: InspectFlag, fallback: number, min: number, max: number): number {
  return intFlag(values, flag, fallback, min, max, inspectFlagLabel(flag));
}

/** A name for the ANF wrapper: printable, no control characters, at most 128 characters. */
function label(values: FlagValues, flag: InspectFlag, fallback: string): string {
  const raw = text(values, flag);
  if (raw === undefined) return fallback;
  // eslint-disable-next-line no-control-regex
  if (raw === '' || raw.length > 128 || /[\x00-\x1f\x7f]/.test(raw)) throw invalid(flag, 'a name of 1 to 128 printable characters', raw);
  return raw;
}

function eveWrap(values: FlagValues): AnfWrapOptions | undefined {
  const wrap = text(values, 'eve-wrap');
  const named = (['firewall-name', 'availability-zone'] as const).filter((f) => values[f] !== undefined);
  if (wrap === undefined) {
    if (named.length > 0) throw usage(`--${named[0]} names the AWS Network Firewall wrapper; it needs --eve-wrap anf`);
    return undefined;
  }
  if (wrap !== 'anf') throw invalid('eve-wrap', 'anf (the AWS Network Firewall log wrapper)', wrap);
  if (values.eve === undefined) throw usage('--eve-wrap wraps the EVE log; it needs --eve FILE (or --eve - for stdout)');
  return {
    firewallName: label(values, 'firewall-name', INSPECT_DEFAULTS.firewallName),
    availabilityZone: label(values, 'availability-zone', INSPECT_DEFAULTS.availabilityZone),
  };
}

export function parseInspectOptions(argv: string[]): InspectCommandLine {
  const { values } = parseFlags(argv, INSPECT_FLAGS, 'gatehouse inspect');
  if (values.help) return { help: true };

  const policy = text(values, 'policy');
  if (policy === undefined) throw usage('--policy FILE is required (try examples/policies/allow-all.yaml)');
  if (policy === '') throw invalid('policy', 'a policy file', policy);
  const eve = text(values, 'eve');
  if (eve === '') throw invalid('eve', "a file path or '-' for stdout", eve);

  const spec = [values.debug === true ? 'all=debug' : '', text(values, 'logging') ?? ''].filter(Boolean).join(',');
  const logFormat = text(values, 'log-format') ?? 'text';
  if (logFormat !== 'text' && logFormat !== 'json') throw invalid('log-format', 'one of text, json', logFormat);
  const bind = text(values, 'bind') ?? TUNNEL_DEFAULTS.bind;
  if (!isIPv4(bind)) throw invalid('bind', 'an IPv4 address (GWLB sends GENEVE over IPv4)', bind);
  const healthPort = integer(values, 'port', 0, 0, 65535);

  return {
    policyFile: resolve(policy),
    endpointIdleTimeoutS: integer(values, 'timeout', TUNNEL_DEFAULTS.endpointIdleTimeoutS, 0, 86400),
    flowIdleTimeoutS: integer(values, 'idle', TUNNEL_DEFAULTS.flowIdleTimeoutS, 1, 86400),
    healthPort: healthPort === 0 ? undefined : healthPort,
    healthJson: values.json === true,
    healthDetails: values['status-only'] !== true,
    logLevels: parseLoggingSpec(spec, INSPECT_LOG_SECTIONS),
    logFormat,
    udpThreads: integer(values, 'udpthreads', defaultThreads(), 1, MAX_THREADS),
    maxEndpoints: integer(values, 'max-endpoints', TUNNEL_DEFAULTS.maxEndpoints, 1, 4096),
    maxFlows: integer(values, 'max-flows', TUNNEL_DEFAULTS.maxFlows, 1000, 100_000_000),
    gwlbCidrs: gwlbCidrs(values),
    bind,
    rcvbuf: integer(values, 'rcvbuf', TUNNEL_DEFAULTS.socketBuffer, 0, 1 << 30),
    sndbuf: integer(values, 'sndbuf', TUNNEL_DEFAULTS.socketBuffer, 0, 1 << 30),
    eve,
    eveWrap: eveWrap(values),
    verifyTimeoutMs: integer(values, 'verify-timeout', INSPECT_DEFAULTS.verifyTimeoutMs, 1, 60_000),
  };
}

export const INSPECT_HELP = `Usage: gatehouse inspect --policy FILE [options]
A Gateway Load Balancer target with the policy engine inside: GENEVE on UDP 6081 in, one
verdict per flow from the policy (allow, alert, drop, reject), every later packet of the
flow handled in the native core. No TUN interfaces, no hook scripts.
Example: gatehouse inspect --policy /etc/gatehouse/policy.yaml -p 8080 --eve /var/log/gatehouse/eve.json

Policy and logs:
      --policy FILE       The policy (YAML; check it with 'gatehouse policy check FILE'). Required.
                          Reloaded when the file (or a domain list it imports) changes, and on
                          SIGHUP; a file that does not load is refused and the running policy stays.
      --eve FILE          Write Suricata EVE JSON lines to FILE (appended; reopened on SIGHUP, for
                          logrotate), or to stdout with --eve -. Default: no EVE log.
                          alert events for drops, rejects and alert rules; flow events when flows end.
      --eve-wrap anf      Wrap each event as AWS Network Firewall does
                          ({firewall_name, availability_zone, event_timestamp, event}).
      --firewall-name NAME      firewall_name in the wrapper (default ${INSPECT_DEFAULTS.firewallName}).
      --availability-zone AZ    availability_zone in the wrapper (default ${INSPECT_DEFAULTS.availabilityZone}).
      --verify-timeout MS A verify_dns lookup taking longer counts as unresolved (the rule's
                          on_mismatch applies). Default ${INSPECT_DEFAULTS.verifyTimeoutMs}. 1 to 60000.

Options shared with 'gatehouse tunnel' (same meaning):
  -h, --help              Print this help
  -p, --port PORT         Serve health (any path) and Prometheus /metrics on TCP port PORT
                          (default: no server).
  -j, --json              Health report details as JSON instead of text.
  -s, --status-only       Health answer is the HTTP status code only (200 or 503), no details.
  -i, --idle SECS         A flow with no packet for SECS ends (EVE flow event); match (or exceed)
                          GWLB's idle timeout. Default ${TUNNEL_DEFAULTS.flowIdleTimeoutS}. 1 to 86400.
  -t, --timeout SECS      Forget an endpoint and its flows after SECS without a packet;
                          0 (the default) never does. 0 to 86400.
  -d, --debug             Debug logging; short for --logging all=debug.
      --udpthreads N      Threads receiving GENEVE (SO_REUSEPORT sockets). 1 to ${MAX_THREADS}.
                          Default: one per CPU core.
      --logging SPEC      section=level entries, comma separated, case-insensitive; later ones win.
                          Sections: ${INSPECT_LOG_SECTIONS.join(' ')} all
                          Levels: ${LOG_LEVELS.join(' ')}
                          Default level: ${DEFAULT_LOG_LEVEL}. Decisions are logged at debug in 'flow'.
      --log-format FORMAT text (default) or json: one line per event on stderr.
      --max-endpoints N   Endpoints known at once; packets of more are dropped. Default ${TUNNEL_DEFAULTS.maxEndpoints}, 1-4096.
      --max-flows N       Flows held at once over all endpoints; packets opening more are dropped
                          and counted (drop_flow_limit). Default ${TUNNEL_DEFAULTS.maxFlows}.
      --gwlb-cidr CIDRS   Accept GENEVE only from these IPv4 prefixes, comma separated, e.g. the
                          target subnet's CIDR (default: from any address).
      --bind ADDR         IPv4 address to receive GENEVE on (default ${TUNNEL_DEFAULTS.bind}).
      --rcvbuf BYTES      Receive socket buffer (default 8 MiB; 0 = the kernel's default).
      --sndbuf BYTES      Send socket buffer (default 8 MiB; 0 = the kernel's default).

Signals: SIGHUP reloads the policy and reopens the EVE file; SIGTERM and SIGINT stop
(flows still open are written to the EVE log as flow events).
`;
