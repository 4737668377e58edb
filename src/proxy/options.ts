/**
 * `gatehouse proxy` flags -> validated options. Pure: files are opened by
 * the command, not here.
 */
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { choiceFlag, intFlag, parseFlags, type FlagValues } from '../cli/flags';
import { GatehouseError } from '../errors';
import { LOG_LEVELS, type LogFormat } from '../observe/log';

export const PROXY_FLAGS = {
  policy: { type: 'string' },
  listen: { type: 'string', multiple: true },
  'proxy-protocol': { type: 'boolean' },
  'health-port': { type: 'string' },
  'health-bind': { type: 'string' },
  'access-log': { type: 'string' },
  'decision-log': { type: 'string' },
  'max-connections': { type: 'string' },
  'max-client-connections': { type: 'string' },
  'max-header-bytes': { type: 'string' },
  'header-timeout': { type: 'string' },
  'idle-timeout': { type: 'string' },
  'connect-timeout': { type: 'string' },
  'resolve-timeout': { type: 'string' },
  'dns-cache-ttl': { type: 'string' },
  'drain-timeout': { type: 'string' },
  via: { type: 'string' },
  'x-forwarded-for': { type: 'string' },
  'non-tls-connect': { type: 'string' },
  'log-format': { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const PROXY_DEFAULTS = {
  listen: ['0.0.0.0:3128', '[::]:3128'],
  healthPort: 9090,
  healthBind: '0.0.0.0',
  maxConnections: 10_000,
  maxClientConnections: 512,
  maxHeaderBytes: 16 * 1024,
  headerTimeoutS: 10,
  idleTimeoutS: 60,
  connectTimeoutS: 10,
  resolveTimeoutMs: 5_000,
  dnsCacheTtlS: 30,
  drainTimeoutS: 30,
  frontingTimeoutS: 10,
  via: 'on',
  xForwardedFor: 'off',
  nonTlsConnect: 'deny',
} as const;

export interface ProxyCliOptions {
  policy: string;
  listen: { host: string; port: number }[];
  proxyProtocol: boolean;
  healthPort: number;
  healthBind: string;
  accessLog: string | null;
  decisionLog: string | null;
  maxConnections: number;
  maxClientConnections: number;
  maxHeaderBytes: number;
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  connectTimeoutMs: number;
  resolveTimeoutMs: number;
  dnsCacheTtlMs: number;
  drainTimeoutMs: number;
  via: string | null;
  xForwardedFor: 'add' | 'off';
  nonTlsConnect: 'allow' | 'deny';
  logFormat: LogFormat;
  logLevel: (typeof LOG_LEVELS)[number];
}

function invalid(flag: string, what: string, raw: string): GatehouseError {
  return new GatehouseError('ERR_INVALID_ARG', `Expected ${what} for --${flag} but received ${JSON.stringify(raw)}`);
}

/** "ADDR:PORT", "[v6]:PORT" or ":PORT" (all IPv4 and IPv6 addresses). */
export function parseListen(raw: string): { host: string; port: number }[] {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+))?:(\d{1,5})$/.exec(raw);
  const port = m ? Number(m[3]) : NaN;
  const host = m ? (m[1] ?? m[2]) : undefined;
  if (!m || port > 65535 || (host !== undefined && isIP(host) === 0)) {
    throw invalid('listen', 'ADDRESS:PORT, [IPv6]:PORT or :PORT', raw);
  }
  return host === undefined ? [{ host: '0.0.0.0', port }, { host: '::', port }] : [{ host, port }];
}

export function parseProxyOptions(argv: string[]): ProxyCliOptions | { help: true } {
  const { values } = parseFlags(argv, PROXY_FLAGS, 'gatehouse proxy');
  if (values.help === true) return { help: true };
  const v = values as FlagValues & { listen?: string[] };
  const policy = v.policy;
  if (typeof policy !== 'string' || policy === '') throw new GatehouseError('ERR_USAGE', "gatehouse proxy: --policy FILE is required (see 'gatehouse proxy --help')");
  const listen = (v.listen ?? [...PROXY_DEFAULTS.listen]).flatMap(parseListen);
  const healthBind = typeof v['health-bind'] === 'string' ? v['health-bind'] : PROXY_DEFAULTS.healthBind;
  if (isIP(healthBind) === 0) throw invalid('health-bind', 'an IP address', healthBind);
  const via = choiceFlag(values, 'via', PROXY_DEFAULTS.via, ['on', 'off'] as const);
  const log = (flag: string): string | null => (typeof v[flag] === 'string' ? (v[flag] === '-' ? '-' : resolve(v[flag] as string)) : null);
  return {
    policy: resolve(policy),
    listen,
    proxyProtocol: v['proxy-protocol'] === true,
    healthPort: intFlag(values, 'health-port', PROXY_DEFAULTS.healthPort, 0, 65535),
    healthBind,
    accessLog: log('access-log'),
    decisionLog: log('decision-log'),
    maxConnections: intFlag(values, 'max-connections', PROXY_DEFAULTS.maxConnections, 1, 1_000_000),
    maxClientConnections: intFlag(values, 'max-client-connections', PROXY_DEFAULTS.maxClientConnections, 1, 1_000_000),
    maxHeaderBytes: intFlag(values, 'max-header-bytes', PROXY_DEFAULTS.maxHeaderBytes, 1024, 1024 * 1024),
    headerTimeoutMs: intFlag(values, 'header-timeout', PROXY_DEFAULTS.headerTimeoutS, 1, 3600) * 1000,
    idleTimeoutMs: intFlag(values, 'idle-timeout', PROXY_DEFAULTS.idleTimeoutS, 1, 86_400) * 1000,
    connectTimeoutMs: intFlag(values, 'connect-timeout', PROXY_DEFAULTS.connectTimeoutS, 1, 3600) * 1000,
    resolveTimeoutMs: intFlag(values, 'resolve-timeout', PROXY_DEFAULTS.resolveTimeoutMs, 1, 60_000),
    dnsCacheTtlMs: intFlag(values, 'dns-cache-ttl', PROXY_DEFAULTS.dnsCacheTtlS, 0, 86_400) * 1000,
    drainTimeoutMs: intFlag(values, 'drain-timeout', PROXY_DEFAULTS.drainTimeoutS, 0, 3600) * 1000,
    via: via === 'on' ? '1.1 gatehouse' : null,
    xForwardedFor: choiceFlag(values, 'x-forwarded-for', PROXY_DEFAULTS.xForwardedFor, ['add', 'off'] as const),
    nonTlsConnect: choiceFlag(values, 'non-tls-connect', PROXY_DEFAULTS.nonTlsConnect, ['allow', 'deny'] as const),
    logFormat: choiceFlag(values, 'log-format', 'text', ['text', 'json'] as const),
    logLevel: choiceFlag(values, 'log-level', 'info', LOG_LEVELS),
  };
}

export const PROXY_HELP = `Usage: gatehouse proxy --policy FILE [options]
An egress forward proxy (HTTP/1.1 and CONNECT) for fleets behind an NLB and PrivateLink:
ordered allow/deny rules by client, VPC endpoint, host, port and method; SSRF defences
(every resolved address checked, the checked address connected to); the TLS SNI inside a
CONNECT must match its host (no domain fronting); Squid-format access log.
Example: gatehouse proxy --policy /etc/gatehouse/proxy.yaml --proxy-protocol --access-log -

      --policy FILE       The policy (YAML). Required. Reloaded on SIGHUP and when the file
                          changes; a file that does not load is refused and the running one stays.
      --listen ADDR:PORT  Where to accept clients; repeat for several. ADDR may be [IPv6];
                          :PORT means every IPv4 and IPv6 address. Default 0.0.0.0:3128 and [::]:3128.
      --proxy-protocol    Every connection starts with a PROXY protocol v1/v2 header (an NLB with
                          proxy protocol v2 on): the client address, and the VPC endpoint id from
                          AWS TLV 0xEA, come from it.
      --health-port PORT  Health (GET /, 200 or 503) and Prometheus /metrics for the NLB, on their
                          own port so probes never reach the access log. Default ${PROXY_DEFAULTS.healthPort}; 0 = off.
      --health-bind ADDR  Address of the health port (default ${PROXY_DEFAULTS.healthBind}).
      --access-log FILE   Squid's native access.log lines to FILE, or - for stdout. Default: none.
      --decision-log FILE One JSON line per request (client, endpoint, host, port, rule, decision,
                          resolved addresses, bytes, durations), or - for stdout. Default: none.
                          Both logs are reopened on SIGHUP (logrotate).
      --max-connections N          Client connections at once; more get 503. Default ${PROXY_DEFAULTS.maxConnections}.
      --max-client-connections N   Connections at once from one client address; more get 429.
                                   Default ${PROXY_DEFAULTS.maxClientConnections}.
      --max-header-bytes N         Largest request head (431 beyond). Default ${PROXY_DEFAULTS.maxHeaderBytes}.
      --header-timeout SECS        A request head must arrive within SECS (slowloris). Default ${PROXY_DEFAULTS.headerTimeoutS}.
      --idle-timeout SECS          Idle keep-alive connections and tunnels close. Default ${PROXY_DEFAULTS.idleTimeoutS}.
      --connect-timeout SECS       Upstream connect deadline (504). Default ${PROXY_DEFAULTS.connectTimeoutS}.
      --resolve-timeout MS         DNS deadline (504). Default ${PROXY_DEFAULTS.resolveTimeoutMs}.
      --dns-cache-ttl SECS         Reuse a name's addresses this long (every request still checks
                                   them against its rule). Default ${PROXY_DEFAULTS.dnsCacheTtlS}; 0 = ask every time.
      --drain-timeout SECS         On SIGTERM: stop accepting, let requests in flight finish this
                                   long, then close. Default ${PROXY_DEFAULTS.drainTimeoutS}.
      --via on|off                 Add "Via: 1.1 gatehouse" both ways. Default ${PROXY_DEFAULTS.via}.
      --x-forwarded-for add|off    Append the client address to X-Forwarded-For. Default ${PROXY_DEFAULTS.xForwardedFor}.
      --non-tls-connect allow|deny What a CONNECT tunnel whose client does not speak TLS gets.
                                   Default ${PROXY_DEFAULTS.nonTlsConnect}.
      --log-format text|json       Event log lines on stderr. Default text.
      --log-level LEVEL            ${LOG_LEVELS.join(', ')}. Default info.
  -h, --help              Print this help

Answers: 403 (with the deciding rule's id in X-Gatehouse-Rule) for policy, SSRF and port
denials, 502 for upstream failures, 504 for timeouts, 429/503 for limits.
Signals: SIGHUP reloads the policy (connections in flight keep going) and reopens the logs;
SIGTERM and SIGINT drain and stop.
`;
