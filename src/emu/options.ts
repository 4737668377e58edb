/**
 * `gatehouse emu` flags -> validated options. Pure: no sockets here, so every
 * rule about flags is testable on its own.
 */
import { GENEVE_REASONS, type GeneveReason } from '../geneve/reasons';
import { GatehouseError } from '../errors';
import {
  choiceFlag,
  intFlag,
  ipv4Flag,
  listFlag,
  numberFlag,
  parseFlags,
  rangeFlag,
  type FlagValues,
} from '../cli/flags';
import { minimumInnerSize, type InnerProtocol } from '../packet/inner';

export const EMU_FLAGS = {
  target: { type: 'string' },
  port: { type: 'string' },
  bind: { type: 'string' },
  rate: { type: 'string' },
  duration: { type: 'string' },
  count: { type: 'string' },
  enis: { type: 'string' },
  flows: { type: 'string' },
  proto: { type: 'string' },
  v6: { type: 'string' },
  size: { type: 'string' },
  sports: { type: 'string' },
  search: { type: 'string' },
  malformed: { type: 'string' },
  kinds: { type: 'string' },
  'ignore-ttl': { type: 'boolean' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean' },
  batch: { type: 'string' },
  rcvbuf: { type: 'string' },
  sndbuf: { type: 'string' },
  drain: { type: 'string' },
  seed: { type: 'string' },
  echo: { type: 'boolean' },
  threads: { type: 'string' },
  udpthreads: { type: 'string' },
  validate: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const MAX_INNER_SIZE = 8500; // GWLB endpoint MTU
const MAX_TEMPLATE_BYTES = 256 * 1024 * 1024;

export interface GeneratorRunOptions {
  mode: 'generate';
  target: string;
  port: number;
  bind?: string; // undefined: pick the address the kernel would use toward target
  rate: number;
  durationS: number;
  count: number;
  enis: number;
  flows: number;
  protocol: InnerProtocol;
  v6Percent: number;
  size: number;
  sports: number;
  search?: [number, number];
  malformedPercent: number;
  kinds: GeneveReason[];
  ignoreTtl: boolean;
  json: boolean;
  quiet: boolean;
  batch: number;
  rcvbuf: number;
  sndbuf: number;
  drainMs: number;
  /** Same seed, same endpoint ids and cookies; undefined = random each run. */
  seed?: number;
}

export interface EchoRunOptions {
  mode: 'echo';
  bind: string;
  port: number;
  threads: number;
  validate: boolean;
  durationS: number; // 0: until SIGINT/SIGTERM
  batch: number;
  rcvbuf: number;
  sndbuf: number;
  json: boolean;
  quiet: boolean;
}

export type EmuOptions = GeneratorRunOptions | EchoRunOptions | { mode: 'help' };

const GENERATE_ONLY = ['target', 'rate', 'count', 'enis', 'flows', 'proto', 'v6', 'size', 'sports', 'search', 'malformed', 'kinds', 'ignore-ttl', 'drain', 'seed'];
const ECHO_ONLY = ['threads', 'udpthreads', 'validate'];

export function parseEmuOptions(argv: string[]): EmuOptions {
  const { values } = parseFlags(argv, EMU_FLAGS, 'gatehouse emu');
  if (values.help) return { mode: 'help' };
  const common = {
    port: intFlag(values, 'port', 6081, 1, 65535),
    batch: intFlag(values, 'batch', 64, 1, 1024),
    rcvbuf: intFlag(values, 'rcvbuf', 8 * 1024 * 1024, 0, 1 << 30),
    sndbuf: intFlag(values, 'sndbuf', 8 * 1024 * 1024, 0, 1 << 30),
    json: values.json === true,
    quiet: values.quiet === true,
  };
  if (values.echo) {
    rejectFlags(values, GENERATE_ONLY, '--echo');
    if (values.threads !== undefined && values.udpthreads !== undefined) {
      throw new GatehouseError('ERR_USAGE', 'gatehouse emu: give --threads or --udpthreads (the same setting), not both');
    }
    return {
      mode: 'echo',
      ...common,
      bind: ipv4Flag(values, 'bind', '0.0.0.0') as string,
      threads: intFlag(values, values.udpthreads !== undefined ? 'udpthreads' : 'threads', 1, 1, 16),
      validate: values.validate === true,
      durationS: numberFlag(values, 'duration', 0, 0, 86400),
    };
  }
  rejectFlags(values, ECHO_ONLY, 'the generator (they belong to --echo)');
  const target = ipv4Flag(values, 'target');
  if (target === undefined) {
    throw new GatehouseError('ERR_USAGE', 'gatehouse emu: --target ADDR is required (the IPv4 address of the appliance), or --echo to run a reflector');
  }
  const count = intFlag(values, 'count', 0, 0, 1e12);
  // Every run is bounded: without --count the default is 5 s; with --count alone, at most 10 minutes.
  const durationS = numberFlag(values, 'duration', count > 0 ? 600 : 5, 0.1, 86400);
  const protocol = choiceFlag(values, 'proto', 'udp', ['udp', 'tcp', 'icmp'] as const);
  const v6Percent = intFlag(values, 'v6', 0, 0, 100);
  const minSize = minimumInnerSize(v6Percent > 0 ? 6 : 4, protocol);
  const size = intFlag(values, 'size', Math.max(128, minSize), minSize, MAX_INNER_SIZE);
  const enis = intFlag(values, 'enis', 1, 1, 1024);
  const flows = intFlag(values, 'flows', 100, 1, 1_000_000);
  if (flows < enis) {
    throw new GatehouseError('ERR_INVALID_ARG', `Expected --flows at least --enis (${enis}) so that every endpoint carries a flow but received ${flows}`);
  }
  if (flows * (size + 48) > MAX_TEMPLATE_BYTES) {
    throw new GatehouseError('ERR_INVALID_ARG', `Expected --flows x --size to stay under 256 MiB of templates but received ${flows} x ${size}`);
  }
  const malformedPercent = numberFlag(values, 'malformed', 0, 0, 50);
  if (values.kinds !== undefined && malformedPercent === 0) {
    throw new GatehouseError('ERR_USAGE', 'gatehouse emu: --kinds selects malformed kinds and needs --malformed PCT');
  }
  return {
    mode: 'generate',
    ...common,
    target,
    bind: ipv4Flag(values, 'bind'),
    rate: intFlag(values, 'rate', 10000, 0, 10_000_000),
    durationS,
    count,
    enis,
    flows,
    protocol,
    v6Percent,
    size,
    sports: intFlag(values, 'sports', 1, 1, 64),
    search: rangeFlag(values, 'search', 1, 10_000_000),
    malformedPercent,
    kinds: listFlag(values, 'kinds', GENEVE_REASONS, GENEVE_REASONS),
    ignoreTtl: values['ignore-ttl'] === true,
    drainMs: intFlag(values, 'drain', 500, 0, 60_000),
    seed: values.seed === undefined ? undefined : intFlag(values, 'seed', 0, 0, 2 ** 32 - 1),
  };
}

function rejectFlags(values: FlagValues, flags: string[], where: string): void {
  const given = flags.filter((f) => values[f] !== undefined);
  if (given.length > 0) {
    throw new GatehouseError('ERR_USAGE', `gatehouse emu: ${given.map((f) => `--${f}`).join(', ')} cannot be used with ${where}`);
  }
}

export const EMU_HELP = `Usage: gatehouse emu --target ADDR [options]     load and check a GWLB target
       gatehouse emu --echo [--bind ADDR] [options] reflect GENEVE like a gwlbtun target
       gatehouse emu gateway --tun NAME ...          the lab's GWLB (started by 'gatehouse lab')

Generator (sends what a Gateway Load Balancer sends, checks every reply):
  --target ADDR      IPv4 address of the appliance (required)
  --port PORT        its GENEVE port (default 6081)
  --bind ADDR        our address; replies arrive on ADDR:6081 (default: the
                     address the kernel uses toward ADDR; 127.0.0.2 for a
                     target on 127.0.0.1)
  --rate PPS         packets per second, 0 = flood (default 10000)
  --duration S       stop sending after S seconds (default 5; 600 with --count)
  --count N          stop after N packets (default: no limit)
  --enis N           GWLB endpoints (ENI ids), 1..1024 (default 1)
  --flows M          flows, each its own 5-tuple and cookie (default 100)
  --proto P          udp | tcp | icmp inner packets (default udp)
  --v6 PCT           share of IPv6 flows in percent (default 0)
  --size BYTES       inner packet size, up to 8500 (default 128)
  --sports N         outer UDP source ports to send from (default 1)
  --search LO:HI     bisect the highest rate with < 1 % loss
  --malformed PCT    mix in malformed GENEVE (share of all packets sent)
  --kinds K,K        which malformed kinds (default all): ${GENEVE_REASONS.join(', ')}
  --ignore-ttl       accept a decremented TTL / hop limit (routing appliances)
  --drain MS         wait for late replies after sending (default 500)
  --seed N           the same ENI ids, attachment ids and cookies on every run
                     with the same N (default: random)
  --batch N          datagrams per sendmmsg/recvmmsg (default 64)
  --rcvbuf B, --sndbuf B  socket buffer sizes (default 8 MiB)
  --json             end with one JSON object on the last line
  --quiet            no live progress line

Reflector (--echo): the harness ceiling and a passthrough appliance
  --bind ADDR        address to listen on (default 0.0.0.0), --port PORT (6081)
  --threads N        receive sockets/threads with SO_REUSEPORT (alias --udpthreads)
  --validate         drop malformed GENEVE (counted by reason) instead of echoing
  --duration S       stop after S seconds (default: until SIGINT/SIGTERM)
`;
