import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { GatehouseError } from '../../src/errors';
import { INSPECT_FLAGS, INSPECT_HELP, INSPECT_LOG_SECTIONS, parseInspectOptions, type InspectCliOptions } from '../../src/inspect/options';
import { defaultThreads, TUNNEL_FLAGS } from '../../src/tunnel/options';

function parse(argv: string[]): InspectCliOptions {
  const o = parseInspectOptions(argv);
  if ('help' in o) throw new Error('unexpected help');
  return o;
}

function rejects(argv: string[], code: string, message: string): void {
  assert.throws(
    () => parseInspectOptions(argv),
    (err: unknown) => {
      assert.ok(err instanceof GatehouseError, `${argv.join(' ')}: ${String(err)}`);
      assert.equal(err.code, code, `${argv.join(' ')}: ${err.message}`);
      assert.equal(err.message, message);
      return true;
    },
  );
}

test('defaults: the tunnel defaults, no health server, no EVE log', () => {
  const o = parse(['--policy', 'p.yaml']);
  assert.deepEqual(o, {
    policyFile: resolve('p.yaml'),
    endpointIdleTimeoutS: 0,
    flowIdleTimeoutS: 350,
    healthPort: undefined,
    healthJson: false,
    healthDetails: true,
    logLevels: Object.fromEntries(INSPECT_LOG_SECTIONS.map((s) => [s, 'info'])) as InspectCliOptions['logLevels'],
    logFormat: 'text',
    udpThreads: defaultThreads(),
    maxEndpoints: 64,
    maxFlows: 2_000_000,
    gwlbCidrs: [],
    bind: '0.0.0.0',
    rcvbuf: 8 * 1024 * 1024,
    sndbuf: 8 * 1024 * 1024,
    eve: undefined,
    eveWrap: undefined,
    verifyTimeoutMs: 2000,
  } satisfies InspectCliOptions);
});

test('every flag, short and long forms', () => {
  const o = parse([
    '--policy=/etc/gh/p.yaml', '-p', '8080', '-j', '-s', '-i', '600', '-t', '120', '--udpthreads', '3',
    '--logging', 'policy=debug,flow=debug', '--log-format', 'json', '--max-endpoints', '8', '--max-flows', '5000',
    '--gwlb-cidr', '10.0.0.0/16, 192.0.2.0/24', '--bind', '192.0.2.2', '--rcvbuf', '0', '--sndbuf', '65536',
    '--eve', '/var/log/eve.json', '--eve-wrap', 'anf', '--firewall-name', 'fw-1', '--availability-zone', 'eu-west-1a',
    '--verify-timeout', '500',
  ]);
  assert.equal(o.policyFile, '/etc/gh/p.yaml');
  assert.equal(o.healthPort, 8080);
  assert.equal(o.healthJson, true);
  assert.equal(o.healthDetails, false);
  assert.equal(o.flowIdleTimeoutS, 600);
  assert.equal(o.endpointIdleTimeoutS, 120);
  assert.equal(o.udpThreads, 3);
  assert.equal(o.logLevels.policy, 'debug');
  assert.equal(o.logLevels.flow, 'debug');
  assert.equal(o.logLevels.core, 'info');
  assert.equal(o.logFormat, 'json');
  assert.equal(o.maxEndpoints, 8);
  assert.equal(o.maxFlows, 5000);
  assert.deepEqual(o.gwlbCidrs, [
    { address: '10.0.0.0', prefixLength: 16 },
    { address: '192.0.2.0', prefixLength: 24 },
  ]);
  assert.equal(o.bind, '192.0.2.2');
  assert.equal(o.rcvbuf, 0);
  assert.equal(o.sndbuf, 65536);
  assert.equal(o.eve, '/var/log/eve.json');
  assert.deepEqual(o.eveWrap, { firewallName: 'fw-1', availabilityZone: 'eu-west-1a' });
  assert.equal(o.verifyTimeoutMs, 500);
});

test('-d is all=debug, and --logging entries after it win; gwlbtun sections still parse', () => {
  const o = parse(['--policy', 'p', '-d', '--logging', 'udp=critical,tunnel=info']);
  assert.equal(o.logLevels.flow, 'debug');
  assert.equal(o.logLevels.udp, 'critical');
  assert.equal(o.logLevels.tunnel, 'info');
});

test('--eve - is stdout; the ANF wrapper names default to gatehouse / local', () => {
  const o = parse(['--policy', 'p', '--eve', '-', '--eve-wrap', 'anf']);
  assert.equal(o.eve, '-');
  assert.deepEqual(o.eveWrap, { firewallName: 'gatehouse', availabilityZone: 'local' });
});

test('the shared flags are spelled as the tunnel spells them', () => {
  for (const flag of ['port', 'json', 'status-only', 'idle', 'timeout', 'udpthreads', 'logging', 'log-format', 'max-endpoints', 'max-flows', 'gwlb-cidr', 'bind', 'rcvbuf', 'sndbuf', 'debug', 'help'] as const) {
    assert.deepEqual(INSPECT_FLAGS[flag], TUNNEL_FLAGS[flag], flag);
  }
});

test('refusals name the flag and what it allows', () => {
  const see = "(see 'gatehouse inspect --help')";
  rejects([], 'ERR_USAGE', `gatehouse inspect: --policy FILE is required (try examples/policies/allow-all.yaml) ${see}`);
  rejects(['--policy', ''], 'ERR_INVALID_ARG', 'Expected a policy file for --policy but received ""');
  rejects(['--policy', 'p', '-i', '0'], 'ERR_INVALID_ARG', 'Expected an integer between 1 and 86400 for -i/--idle but received "0"');
  rejects(['--policy', 'p', '-t', '1.5'], 'ERR_INVALID_ARG', 'Expected an integer between 0 and 86400 for -t/--timeout but received "1.5"');
  rejects(['--policy', 'p', '-p', '70000'], 'ERR_INVALID_ARG', 'Expected an integer between 0 and 65535 for -p/--port but received "70000"');
  rejects(['--policy', 'p', '--verify-timeout', '0'], 'ERR_INVALID_ARG', 'Expected an integer between 1 and 60000 for --verify-timeout but received "0"');
  rejects(['--policy', 'p', '--bind', '::1'], 'ERR_INVALID_ARG', 'Expected an IPv4 address (GWLB sends GENEVE over IPv4) for --bind but received "::1"');
  rejects(['--policy', 'p', '--log-format', 'xml'], 'ERR_INVALID_ARG', 'Expected one of text, json for --log-format but received "xml"');
  rejects(
    ['--policy', 'p', '--gwlb-cidr', '10.0.0.1/16'],
    'ERR_INVALID_ARG',
    'Expected comma-separated IPv4 prefixes with no host bits set, like 10.0.0.0/16,192.0.2.0/24 (at most 64) for --gwlb-cidr but received "10.0.0.1/16" ("10.0.0.1/16" is not one)',
  );
  rejects(['--policy', 'p', '--eve', ''], 'ERR_INVALID_ARG', `Expected a file path or '-' for stdout for --eve but received ""`);
  rejects(['--policy', 'p', '--eve', 'x', '--eve-wrap', 'gcp'], 'ERR_INVALID_ARG', 'Expected anf (the AWS Network Firewall log wrapper) for --eve-wrap but received "gcp"');
  rejects(['--policy', 'p', '--eve-wrap', 'anf'], 'ERR_USAGE', `gatehouse inspect: --eve-wrap wraps the EVE log; it needs --eve FILE (or --eve - for stdout) ${see}`);
  rejects(['--policy', 'p', '--eve', 'x', '--firewall-name', 'fw'], 'ERR_USAGE', `gatehouse inspect: --firewall-name names the AWS Network Firewall wrapper; it needs --eve-wrap anf ${see}`);
  rejects(['--policy', 'p', '--eve', 'x', '--eve-wrap', 'anf', '--availability-zone', 'a\nb'], 'ERR_INVALID_ARG', 'Expected a name of 1 to 128 printable characters for --availability-zone but received "a\\nb"');
  rejects(['--policy', 'p', '--logging', 'dns=debug'], 'ERR_INVALID_ARG', `Expected a section (${[...INSPECT_LOG_SECTIONS, 'all'].join(', ')}) for --logging but received "dns" in "dns=debug"`);
  rejects(['--policy', 'p', '-c', 'x'], 'ERR_USAGE', `gatehouse inspect: Unknown option '-c' ${see}`);
});

test('--help, and the help text lists every flag the parser takes', () => {
  assert.deepEqual(parseInspectOptions(['--policy', 'p', '-h']), { help: true });
  assert.deepEqual(parseInspectOptions(['--help']), { help: true });
  for (const [flag, spec] of Object.entries(INSPECT_FLAGS)) {
    assert.ok(INSPECT_HELP.includes(`--${flag}`), `--${flag} missing from the help`);
    const short = (spec as { short?: string }).short;
    if (short) assert.ok(INSPECT_HELP.includes(`-${short}, --${flag}`), `-${short} missing from the help`);
  }
  // Every option the help shows is one the parser takes.
  for (const m of INSPECT_HELP.matchAll(/^\s+(?:-\w, )?--([a-z-]+)/gm)) assert.ok(m[1] in INSPECT_FLAGS, `help shows --${m[1]}`);
  assert.match(INSPECT_HELP, /Default 350\. 1 to 86400\./);
  assert.match(INSPECT_HELP, /Sections: core udp geneve tunnel endpoint hook healthcheck policy flow eve all/);
});
