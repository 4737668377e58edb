/**
 * `gatehouse emu ...`: the Gateway Load Balancer emulator. Dispatches to the
 * generator (default), the reflector (--echo) or the lab gateway (gateway).
 */
import { runEcho } from './echo';
import { pickBindAddress, runGeneratorOnce, searchRate, type RunOutput } from './generate';
import { runGatewayCommand } from './gateway-command';
import { EMU_HELP, parseEmuOptions } from './options';
import { formatReport } from './report';

export interface CommandIo {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  /** A progress line: rewritten in place on a terminal, else one line each. */
  progress: (line: string, final: boolean) => void;
}

export async function runEmuCommand(argv: string[], io: CommandIo): Promise<number> {
  if (argv[0] === 'gateway') return runGatewayCommand(argv.slice(1), io.stdout);
  const opts = parseEmuOptions(argv);
  if (opts.mode === 'help') {
    io.stdout(EMU_HELP);
    return 0;
  }
  if (opts.mode === 'echo') return runEcho(opts, io.stdout, (l) => io.progress(l, false));

  const bind = opts.bind ?? (await pickBindAddress(opts.target, opts.port));
  const out: RunOutput = { progress: opts.quiet ? () => undefined : io.progress };
  if (!opts.json) {
    io.stdout(
      `gatehouse emu: ${opts.enis} endpoint(s) x ${opts.flows} flow(s) of ${opts.protocol}` +
        `${opts.v6Percent ? ` (${opts.v6Percent} % IPv6)` : ''}, ${opts.size}-byte inner packets, ` +
        `${bind} -> ${opts.target}:${opts.port}, ${opts.search ? `searching ${opts.search.join('..')} pps` : opts.rate === 0 ? 'flood' : `${opts.rate} pps`}` +
        `${opts.malformedPercent ? `, ${opts.malformedPercent} % malformed` : ''}`,
    );
  }
  if (opts.search) {
    const result = await searchRate(opts, bind, opts.search, out);
    if (opts.json) io.stdout(JSON.stringify({ ...(result.report ?? {}), best_pps: result.best_pps, trials: result.trials }));
    else {
      if (result.report) io.stdout(formatReport(result.report));
      io.stdout(`highest rate with loss < 1 %: ${result.best_pps} pps`);
    }
    return result.best_pps > 0 ? 0 : 1;
  }
  const report = await runGeneratorOnce(opts, bind, out);
  io.stdout(opts.json ? JSON.stringify(report) : formatReport(report));
  return 0;
}
