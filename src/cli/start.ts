/**
 * `npm start` / `gatehouse start`: bring a lab up with the best appliance
 * available (for now the passthrough reflector), send real traffic from
 * `app` to `internet` through it, show what crossed, and say how to go on.
 * Without root it explains what is needed and runs what it can on loopback.
 */
import { spawnSync } from 'node:child_process';
import { GatehouseError } from '../errors';
import type { CommandIo } from '../emu/command';
import { runGeneratorOnce } from '../emu/generate';
import { parseEmuOptions, type EchoRunOptions, type GeneratorRunOptions } from '../emu/options';
import { formatReport } from '../emu/report';
import { hasNetAdmin, labExecCapture, labStatus, labUp, LAB_ADDRESSES } from '../lab';
import { join } from 'node:path';
import { CLI_MAIN, PACKAGE_ROOT } from '../lab/programs';
import type { GatewayFlowEvent } from '../native/binding';
import { startReflector } from '../native/reflector';
import { parseFlags } from './flags';

interface DemoStep {
  title: string;
  host: 'app';
  argv: string[];
  /** What to print from the output when it worked. */
  summary: (stdout: string) => string;
}

const DEMO_STEPS: DemoStep[] = [
  {
    title: 'HTTP by name (DNS answered by the lab internet host)',
    host: 'app',
    argv: ['curl', '-sS', '--max-time', '5', 'http://www.example.com/'],
    summary: (s) => s.trim().split('\n')[0] ?? '',
  },
  {
    title: 'HTTPS with SNI',
    host: 'app',
    argv: ['curl', '-sS', '-k', '--max-time', '5', '-o', '/dev/null', '-w', 'HTTP %{http_code}, TLS to %{remote_ip}', 'https://api.example.com/'],
    summary: (s) => s.trim(),
  },
  {
    title: 'HTTP over IPv6',
    host: 'app',
    argv: ['curl', '-sS', '-6', '--max-time', '5', `http://[${LAB_ADDRESSES.internet.v6}]/`],
    summary: (s) => s.trim().split('\n')[0] ?? '',
  },
  {
    title: 'ping IPv4',
    host: 'app',
    argv: ['ping', '-c', '3', '-i', '0.2', '-W', '2', LAB_ADDRESSES.internet.v4],
    summary: (s) => s.trim().split('\n').slice(-2).join('; '),
  },
  {
    title: 'ping IPv6',
    host: 'app',
    argv: ['ping', '-6', '-c', '3', '-i', '0.2', '-W', '2', LAB_ADDRESSES.internet.v6],
    summary: (s) => s.trim().split('\n').slice(-2).join('; '),
  },
];

export async function runStart(argv: string[], io: CommandIo): Promise<number> {
  const { values } = parseFlags(
    argv,
    { name: { type: 'string' }, loopback: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    'gatehouse start',
  );
  if (values.help) {
    io.stdout(
      'Usage: gatehouse start [--name NAME] [--loopback]   (npm start)\n' +
        'Brings a lab up, sends curl and ping through the appliance, and shows what crossed it.\n' +
        '--loopback: only run the emulator against its reflector on 127.0.0.1 (what runs without root).',
    );
    return 0;
  }
  if (values.loopback) return loopbackDemo(io);
  if (!hasNetAdmin()) return unprivilegedDemo(io);
  const name = values.name === undefined ? undefined : String(values.name);

  io.stdout(
    'gatehouse: bringing up a lab (app -> GWLB -> appliance -> internet) in network namespaces;\n' +
      'the appliance is `gatehouse tunnel` with the passthrough hook (examples/hooks/passthrough.sh) ...',
  );
  let info;
  try {
    info = await labUp({ name, appliance: DEMO_APPLIANCE, log: (l) => io.stdout(`  ${l}`) });
  } catch (err) {
    if (err instanceof GatehouseError && err.code === 'ERR_LAB_EXISTS') {
      io.stdout('  a lab with this name is already up: using it (gatehouse lab down to start afresh)');
      info = undefined;
    } else throw err;
  }
  const labName = info?.name ?? name ?? 'lab';

  io.stdout('\nTraffic from app (198.51.100.10) to internet (203.0.113.10), through the emulated GWLB and the appliance:');
  let failures = 0;
  for (const step of DEMO_STEPS) {
    const r = await labExecCapture(labName, step.host, step.argv, 15_000);
    const ok = r.code === 0;
    if (!ok) failures++;
    io.stdout(`  ${ok ? 'ok  ' : 'FAIL'} ${step.title}\n       $ gatehouse lab exec ${step.host} -- ${step.argv.join(' ')}\n       ${ok ? step.summary(r.stdout) : r.stderr.trim() || `exit ${r.code}`}`);
  }

  // The gateway writes its stats file every second: wait for one written after the last step.
  const stepsDone = Date.now();
  let status = await labStatus(labName);
  for (let i = 0; i < 30 && !(status.gateway && Date.parse(status.gateway.updated) > stepsDone); i++) {
    await new Promise((r) => setTimeout(r, 100));
    status = await labStatus(labName);
  }
  const gw = status.gateway;
  if (gw) {
    const c = gw.counters;
    io.stdout(
      `\nWhat crossed the appliance (counted by the emulated GWLB, endpoint eni ${gw.eni}):\n` +
        `  to the appliance:   ${c.encap_tx_packets} GENEVE packets (${c.encap_tx_bytes} bytes)\n` +
        `  from the appliance: ${c.udp_rx_packets} GENEVE packets, ${c.tun_tx_packets} delivered on\n` +
        `  flows: ${c.flows_created} created, ${c.flows_active} active; drops: ` +
        `${Object.entries(c).filter(([k, v]) => (k.startsWith('drop_') || k.startsWith('malformed_')) && k !== 'drop_not_routed' && v > 0).map(([k, v]) => `${k}=${v}`).join(' ') || 'none'}` +
        (c.drop_not_routed > 0 ? `\n  ignored: ${c.drop_not_routed} multicast packets the kernel sent into the TUN itself (no GWLB endpoint sees those)` : ''),
    );
    for (const f of gw.flows.slice(0, 12)) {
      io.stdout(`    ${describeFlow(f)}  cookie ${f.cookie.toString(16).padStart(8, '0')}  outer sport ${f.sourcePort}`);
    }
  }
  const health = await labExecCapture(labName, 'appliance', ['curl', '-s', '-m', '3', 'http://127.0.0.1:8080/'], 10_000);
  if (health.code === 0) {
    io.stdout(`\nThe appliance's own view (its health endpoint, what GWLB's health check reads):\n${indent(health.stdout.trim().split('\n').slice(0, 40).join('\n'))}`);
  }
  // From `npm start` in a checkout the command is `npx gatehouse`; installed, it is `gatehouse`.
  const gh = process.env.npm_lifecycle_event === 'start' ? 'npx gatehouse' : 'gatehouse';
  const lab = labName === 'lab' ? '' : ` --name ${labName}`;
  io.stdout(`
How to go on (the lab stays up):
  ${gh} lab exec${lab} app -- curl -v http://www.example.com/
  ${gh} lab exec${lab} appliance -- tshark -i veth-gwlb -f 'udp port 6081' -O geneve
  ${gh} lab exec${lab} appliance -- curl -s http://127.0.0.1:8080/metrics
  ${gh} lab exec${lab} gwlb -- ${gh} emu --bind ${LAB_ADDRESSES.gwlb.loadGenerator.v4} --target ${LAB_ADDRESSES.appliance.v4} --rate 20000 --enis 10 --flows 10000 --v6 20
  ${gh} lab status${lab}
  ${gh} lab down${lab}
  ${gh} lab up --name mine --appliance "/path/to/gwlbtun -c /path/to/create-hook.sh"   (your own appliance)`);
  return failures === 0 ? 0 : 1;
}

/** The best appliance so far: the tunnel, every packet straight back through gwo (tc mirred). */
const PASSTHROUGH_HOOK = join(PACKAGE_ROOT, 'examples', 'hooks', 'passthrough.sh');
const DEMO_APPLIANCE = `exec ${[process.execPath, CLI_MAIN, 'tunnel', '-c', PASSTHROUGH_HOOK, '-r', PASSTHROUGH_HOOK, '-p', '8080']
  .map(shellQuote)
  .join(' ')}`;

function indent(text: string): string {
  return text.replace(/^/gm, '  ');
}

function shellQuote(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

function describeFlow(f: GatewayFlowEvent): string {
  const v6 = f.src.includes(':');
  const at = (addr: string, port: number): string => (v6 ? `[${addr}]:${port}` : `${addr}:${port}`);
  if (f.protocol === 1 || f.protocol === 58) return `${f.protocol === 1 ? 'icmp ' : 'icmp6'} ${f.src} <-> ${f.dst} id ${f.srcPort}`;
  const name = f.protocol === 6 ? 'tcp  ' : f.protocol === 17 ? 'udp  ' : `ip${f.protocol}`;
  return `${name} ${at(f.src, f.srcPort)} <-> ${at(f.dst, f.dstPort)}`;
}

/**
 * Without root there is no lab (namespaces, veth pairs and TUN devices need
 * CAP_NET_ADMIN in the host's namespace), but the reflector's raw socket only
 * needs CAP_NET_RAW, which an unprivileged user namespace grants over its own
 * network namespace: run the loopback demonstration in one.
 */
function unprivilegedDemo(io: CommandIo): number {
  io.stdout(
    'gatehouse: the lab needs root: CAP_NET_ADMIN and CAP_SYS_ADMIN to create network namespaces, veth pairs and a\n' +
      'TUN device, CAP_NET_RAW for raw sockets. Run `sudo npm start` for the full demonstration.\n\n' +
      'Meanwhile, on loopback in a private user + network namespace (unshare --user --map-root-user --net):\n' +
      'the emulator against its own reflector (emu --echo on 127.0.0.1).\n',
  );
  const r = spawnSync('unshare', ['--user', '--map-root-user', '--net', process.execPath, CLI_MAIN, 'start', '--loopback'], { stdio: 'inherit' });
  if (r.status === 0) return 0;
  io.stderr(
    `gatehouse: could not run the loopback demonstration in a user namespace (${r.error?.message ?? `exit ${r.status}`}).\n` +
      'It needs unprivileged user namespaces (sysctl user.max_user_namespaces > 0) and unshare from util-linux.',
  );
  return 1;
}

/** emu against emu --echo on 127.0.0.1 (needs CAP_NET_RAW for the reflector's raw socket). */
async function loopbackDemo(io: CommandIo): Promise<number> {
  // In a fresh network namespace loopback starts down.
  spawnSync('ip', ['link', 'set', 'lo', 'up'], { stdio: 'ignore' });
  // The reflector the printed `emu --echo` command would run (its 8 MiB socket buffers included: with the
  // kernel's default a short stall of this shared machine dropped a few hundred packets), on a free port.
  const echo = parseEmuOptions(['--echo', '--bind', '127.0.0.1', '--validate']) as EchoRunOptions;
  const reflector = startReflector({ bind: echo.bind, port: 0, threads: echo.threads, rcvbuf: echo.rcvbuf, sndbuf: echo.sndbuf, batch: echo.batch, validate: echo.validate });
  try {
    const opts = parseEmuOptions(['--target', '127.0.0.1', '--port', String(reflector.port), '--rate', '20000', '--duration', '2', '--enis', '4', '--flows', '1000', '--v6', '20', '--malformed', '1', '--quiet']) as GeneratorRunOptions;
    io.stdout(
      `$ gatehouse emu --echo --bind 127.0.0.1 --port ${reflector.port} --validate &\n` +
        `$ gatehouse emu --target 127.0.0.1 --port ${reflector.port} --rate 20000 --duration 2 --enis 4 --flows 1000 --v6 20 --malformed 1`,
    );
    const report = await runGeneratorOnce(opts, '127.0.0.2', { progress: () => undefined });
    io.stdout(formatReport(report));
    io.stdout('\nA validating target, as a GWLB target must be, returns every good packet and no malformed one.');
  } finally {
    reflector.stop();
  }
  return 0;
}
