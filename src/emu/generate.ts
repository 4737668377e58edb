/**
 * Runs the native generator against a target: plans traffic, hands the
 * templates to the native core, shows progress, drains late replies and
 * builds the report. `searchRate` bisects the highest loss-free rate.
 */
import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { GatehouseError } from '../errors';
import { startGenerator } from '../native/generator';
import { readCounters } from '../native/counters';
import type { GeneratorRunOptions } from './options';
import { buildReport, progressLine, type CounterRecord, type EmuReport } from './report';
import { flowTemplate, malformedTemplates, planTraffic, seededRandom } from './traffic';

export interface RunOutput {
  /** Progress for people (stderr). */
  progress(line: string, final: boolean): void;
}

/** The local address the kernel would send from toward `target`, unless that is the target itself. */
export async function pickBindAddress(target: string, port: number): Promise<string> {
  const socket = dgram.createSocket('udp4');
  try {
    const local = await new Promise<string>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(port, target, () => resolve(socket.address().address));
    });
    if (local !== target) return local;
    // A target on loopback: replies come back to our address on the target's
    // port, which the target itself holds on its own address.
    if (target.startsWith('127.')) return target === '127.0.0.2' ? '127.0.0.1' : '127.0.0.2';
    throw new GatehouseError(
      'ERR_INVALID_ARG',
      `Expected --target to be another host's address, or --bind to name a second local address, but ${target} is this host's own address (replies arrive on <bind>:${port}, which the target holds)`,
    );
  } finally {
    socket.close();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One run at opts.rate; resolves with the report after sending and the drain. */
export async function runGeneratorOnce(opts: GeneratorRunOptions, bind: string, out: RunOutput): Promise<EmuReport> {
  const plan = planTraffic(
    { enis: opts.enis, flows: opts.flows, protocol: opts.protocol, v6Percent: opts.v6Percent, sockets: opts.sports },
    opts.seed === undefined ? undefined : seededRandom(opts.seed),
  );
  const templates = plan.flows.map((f) => flowTemplate(plan, f, opts.size));
  if (opts.malformedPercent > 0) templates.push(...malformedTemplates(plan, opts.size, opts.kinds));

  const cpuStart = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const seconds = (): number => Number(process.hrtime.bigint() - t0) / 1e9;
  const gen = startGenerator({
    target: opts.target,
    targetPort: opts.port,
    bind,
    replyPort: opts.port,
    sourcePorts: new Array<number>(opts.sports).fill(0),
    templates,
    malformedPerMillion: Math.round(opts.malformedPercent * 10_000),
    rate: opts.rate,
    count: opts.count,
    durationMs: Math.round(opts.durationS * 1000),
    batch: opts.batch,
    ignoreTtl: opts.ignoreTtl,
    rcvbuf: opts.rcvbuf,
    sndbuf: opts.sndbuf,
    runTag: randomBytes(8).readBigUInt64BE(0),
  });
  let sendSeconds = 0;
  try {
    let prev: CounterRecord | undefined;
    let lastTick = 0;
    // Poll the live counters (no copy, no call into C++) until sending ends.
    for (;;) {
      await sleep(100);
      const c = readCounters(gen.counters);
      const now = seconds();
      if (c.sender_done === 1) {
        sendSeconds = now;
        break;
      }
      if (now - lastTick >= 1) {
        out.progress(progressLine(now, c, prev, now - lastTick), false);
        prev = c;
        lastTick = now;
      }
    }
    await sleep(opts.drainMs);
  } finally {
    gen.stop();
  }
  const total = seconds();
  const cpu = process.cpuUsage(cpuStart);
  const counters = readCounters(gen.counters);
  out.progress(progressLine(total, counters, undefined, 1), true);
  return buildReport({
    counters,
    latency: gen.latency,
    latencyMaxNs: Number(gen.latencyMax[0]),
    sendSeconds: Math.min(sendSeconds, opts.durationS) || sendSeconds,
    totalSeconds: total,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  });
}

export interface SearchTrial {
  rate: number;
  loss_pct: number;
  rx_pps: number;
  passed: boolean;
}

export interface SearchResult {
  best_pps: number;
  trials: SearchTrial[];
  report?: EmuReport;
}

const LOSS_LIMIT_PCT = 1;

/**
 * Bisects [lo, hi] for the highest rate whose loss stays under 1 %. Each
 * trial is a full run of opts.durationS; stops when the bracket is within
 * 2 % or after 12 trials.
 */
export async function searchRate(opts: GeneratorRunOptions, bind: string, range: [number, number], out: RunOutput): Promise<SearchResult> {
  const trials: SearchTrial[] = [];
  let best: EmuReport | undefined;
  let bestRate = 0;
  const trial = async (rate: number): Promise<boolean> => {
    const r = await runGeneratorOnce({ ...opts, rate, count: 0 }, bind, out);
    const passed = r.loss_pct < LOSS_LIMIT_PCT;
    trials.push({ rate, loss_pct: r.loss_pct, rx_pps: r.rx_pps, passed });
    out.progress(`search: ${rate} pps -> loss ${r.loss_pct} % ${passed ? 'pass' : 'fail'}`, true);
    if (passed && rate > bestRate) {
      bestRate = rate;
      best = r;
    }
    return passed;
  };
  let [lo, hi] = range;
  if (await trial(hi)) return { best_pps: hi, trials, report: best };
  if (!(await trial(lo))) return { best_pps: 0, trials, report: undefined };
  while (trials.length < 12 && hi - lo > Math.max(1, hi * 0.02)) {
    const mid = Math.round((lo + hi) / 2);
    if (await trial(mid)) lo = mid;
    else hi = mid;
  }
  return { best_pps: bestRate, trials, report: best };
}
