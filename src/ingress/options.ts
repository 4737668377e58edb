/**
 * `gatehouse ingress` flags -> validated options. Pure: files are read by
 * the command, not here.
 */
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { choiceFlag, intFlag, invalidFlag, parseFlags, textFlag, type FlagValues } from '../cli/flags';
import { GatehouseError } from '../errors';
import { LOG_LEVELS, type LogFormat } from '../observe/log';
import { parseListen } from '../proxy/options';
import { ACCESS_LOG_FORMATS, type AccessLogFormat } from './logs';
import { INGRESS_ENGINES, INGRESS_SERVER_DEFAULTS, type IngressEngine } from './server';
import { resolveRegion } from './sigv4/lattice-signer';

export const INGRESS_FLAGS = {
  routes: { type: 'string' },
  listen: { type: 'string', multiple: true },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'proxy-protocol': { type: 'boolean' },
  'health-port': { type: 'string' },
  'health-bind': { type: 'string' },
  region: { type: 'string' },
  'access-log': { type: 'string' },
  'access-log-format': { type: 'string' },
  'drain-timeout': { type: 'string' },
  'header-timeout': { type: 'string' },
  'idle-timeout': { type: 'string' },
  'upstream-idle-timeout': { type: 'string' },
  engine: { type: 'string' },
  'log-format': { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const INGRESS_DEFAULTS = {
  listen: '0.0.0.0:8080',
  healthPort: 9091,
  healthBind: '0.0.0.0',
  accessLog: '-',
  accessLogFormat: 'json',
  drainTimeoutS: 30,
  headerTimeoutS: INGRESS_SERVER_DEFAULTS.headerTimeoutMs / 1000,
  idleTimeoutS: INGRESS_SERVER_DEFAULTS.idleTimeoutMs / 1000,
  upstreamIdleTimeoutS: INGRESS_SERVER_DEFAULTS.upstreamIdleMs / 1000,
} as const;

/** The access log's "none". */
const OFF = 'off';

export interface IngressCliOptions {
  routes: string;
  listen: { host: string; port: number }[];
  tls: { cert: string; key: string } | null;
  proxyProtocol: boolean;
  healthPort: number;
  healthBind: string;
  /** Checked when given; else AWS_REGION / AWS_DEFAULT_REGION at start (needed only when a route signs). */
  region: string | undefined;
  /** A path, '-' for stdout, or null for none. */
  accessLog: string | null;
  accessLogFormat: AccessLogFormat;
  drainTimeoutMs: number;
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  upstreamIdleMs: number;
  engine: IngressEngine;
  logFormat: LogFormat;
  logLevel: (typeof LOG_LEVELS)[number];
}

function usage(message: string): GatehouseError {
  return new GatehouseError('ERR_USAGE', `gatehouse ingress: ${message} (see 'gatehouse ingress --help')`);
}

export function parseIngressOptions(argv: string[]): IngressCliOptions | { help: true } {
  const { values } = parseFlags(argv, INGRESS_FLAGS, 'gatehouse ingress');
  if (values.help === true) return { help: true };
  const v = values as FlagValues & { listen?: string[] };
  const routes = textFlag(values, 'routes');
  if (routes === undefined || routes === '') throw usage('--routes FILE is required');
  const cert = textFlag(values, 'tls-cert');
  const key = textFlag(values, 'tls-key');
  if ((cert === undefined) !== (key === undefined)) throw usage('--tls-cert and --tls-key go together');
  const healthBind = textFlag(values, 'health-bind') ?? INGRESS_DEFAULTS.healthBind;
  if (isIP(healthBind) === 0) throw invalidFlag('--health-bind', 'an IP address', healthBind);
  const region = textFlag(values, 'region');
  if (region !== undefined) {
    try {
      resolveRegion(region, {});
    } catch {
      throw invalidFlag('--region', 'an AWS region such as "us-east-1"', region);
    }
  }
  const accessLog = textFlag(values, 'access-log') ?? INGRESS_DEFAULTS.accessLog;
  return {
    routes: resolve(routes),
    listen: (v.listen ?? [INGRESS_DEFAULTS.listen]).flatMap(parseListen),
    tls: cert === undefined || key === undefined ? null : { cert: resolve(cert), key: resolve(key) },
    proxyProtocol: v['proxy-protocol'] === true,
    healthPort: intFlag(values, 'health-port', INGRESS_DEFAULTS.healthPort, 0, 65535),
    healthBind,
    region,
    accessLog: accessLog === OFF ? null : accessLog === '-' ? '-' : resolve(accessLog),
    accessLogFormat: choiceFlag(values, 'access-log-format', INGRESS_DEFAULTS.accessLogFormat, ACCESS_LOG_FORMATS),
    drainTimeoutMs: intFlag(values, 'drain-timeout', INGRESS_DEFAULTS.drainTimeoutS, 0, 3600) * 1000,
    headerTimeoutMs: intFlag(values, 'header-timeout', INGRESS_DEFAULTS.headerTimeoutS, 1, 3600) * 1000,
    idleTimeoutMs: intFlag(values, 'idle-timeout', INGRESS_DEFAULTS.idleTimeoutS, 1, 86_400) * 1000,
    // Under Lattice's 60 s idle timeout, or a pooled connection Lattice already closed gets picked.
    upstreamIdleMs: intFlag(values, 'upstream-idle-timeout', INGRESS_DEFAULTS.upstreamIdleTimeoutS, 1, 59) * 1000,
    engine: choiceFlag(values, 'engine', INGRESS_SERVER_DEFAULTS.engine, INGRESS_ENGINES),
    logFormat: choiceFlag(values, 'log-format', 'text', ['text', 'json'] as const),
    logLevel: choiceFlag(values, 'log-level', 'info', LOG_LEVELS),
  };
}

export const INGRESS_HELP = `Usage: gatehouse ingress --routes FILE [options]
A reverse proxy from public host names to Amazon VPC Lattice services, signing each
request with SigV4 (service vpc-lattice-svcs, UNSIGNED-PAYLOAD) after rewriting its host;
bodies of any size streamed both ways. Meant to run as a fleet behind an NLB or ALB.
Example: gatehouse ingress --routes /etc/gatehouse/routes.yaml --tls-cert cert.pem --tls-key key.pem

      --routes FILE        The routing table (YAML; see examples/ingress/routes.yaml). Required.
                           Reloaded on SIGHUP; a file that does not load is refused and the
                           running table stays.
      --listen ADDR:PORT   Where to accept clients; repeat for several. ADDR may be [IPv6];
                           :PORT means every IPv4 and IPv6 address. Default ${INGRESS_DEFAULTS.listen}.
      --tls-cert FILE      Serve HTTPS with this PEM certificate (chain) ...
      --tls-key FILE       ... and this PEM key. Both are read again on SIGHUP (new handshakes
                           use the new pair; a pair that does not load is refused).
      --proxy-protocol     Every connection starts with a PROXY protocol v1/v2 header (an NLB with
                           proxy protocol v2): the client address in X-Forwarded-For and the
                           access log comes from it.
      --health-port PORT   /healthz (any path: 200 when the routes are loaded and, if a route
                           signs, AWS credentials are held; else 503 with the reasons in JSON)
                           and Prometheus /metrics. Default ${INGRESS_DEFAULTS.healthPort}; 0 = off.
      --health-bind ADDR   Address of the health port (default ${INGRESS_DEFAULTS.healthBind}).
      --region REGION      AWS region to sign for. Default: AWS_REGION, then AWS_DEFAULT_REGION.
                           Credentials come from the default chain: environment, ECS task role,
                           EC2 IMDSv2; refreshed before they expire.
      --access-log PATH    One line per request to PATH, - for stdout, or off. Default -.
                           Reopened on SIGHUP (logrotate).
      --access-log-format json|combined   JSON (every field) or Apache combined. Default json.
      --drain-timeout SECS On SIGTERM: stop accepting, let requests in flight finish this long,
                           then close. Default ${INGRESS_DEFAULTS.drainTimeoutS}.
      --header-timeout SECS        PROXY header, TLS handshake and request head deadline. Default ${INGRESS_DEFAULTS.headerTimeoutS}.
      --idle-timeout SECS          Idle client keep-alive connections close. Default ${INGRESS_DEFAULTS.idleTimeoutS}.
      --upstream-idle-timeout SECS Idle pooled upstream connections close (1-59, under
                                   Lattice's 60 s). Default ${INGRESS_DEFAULTS.upstreamIdleTimeoutS}.
      --engine relay|node          What serves a plain-HTTP listener: the native relay (default;
                                   a connection that asks for a TLS upstream, a WebSocket upgrade
                                   or Expect: 100-continue is handed to node:http), or node:http
                                   for everything. A --tls-cert listener is always node:http.
      --log-format text|json       Event log lines on stderr. Default text.
      --log-level LEVEL            ${LOG_LEVELS.join(', ')}. Default info.
  -h, --help               Print this help

Answers of its own are JSON {"error": CODE, "reason": TEXT}: 421 unknown host, 404 no path
route, 501 WebSocket on a route that is not a passthrough (Lattice has no WebSockets),
502 upstream unreachable, 503 no credentials to sign with, 504 upstream silent past the
route's timeout_ms.
Signals: SIGHUP reloads the routes and the certificate and reopens the access log;
SIGTERM and SIGINT drain and stop.
`;
