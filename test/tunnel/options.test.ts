import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { GatehouseError } from '../../src/errors';
import {
  TUNNEL_FLAGS,
  TUNNEL_HELP,
  defaultThreads,
  parseCpuList,
  parseIpv4Prefix,
  parseTunnelOptions,
  type TunnelCliOptions,
  type TunnelFlag,
} from '../../src/tunnel/options';

/** A temp dir with an executable hook, a non-executable file and a directory. */
function files(t: TestContext): { exe: string; plain: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'gh-opts-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const exe = join(dir, 'create.sh');
  writeFileSync(exe, '#!/bin/sh\n');
  chmodSync(exe, 0o755);
  const plain = join(dir, 'plain.sh');
  writeFileSync(plain, '#!/bin/sh\n');
  chmodSync(plain, 0o644);
  mkdirSync(join(dir, 'sub'));
  return { exe, plain, dir: join(dir, 'sub') };
}

function parse(argv: string[]): TunnelCliOptions {
  const o = parseTunnelOptions(argv);
  if ('help' in o) throw new Error('unexpected help');
  return o;
}

function rejects(argv: string[], code: string, message: string | RegExp): void {
  assert.throws(
    () => parseTunnelOptions(argv),
    (err: unknown) => {
      assert.ok(err instanceof GatehouseError, `${argv.join(' ')}: ${String(err)}`);
      assert.equal(err.code, code, `${argv.join(' ')}: ${err.message}`);
      if (typeof message === 'string') assert.equal(err.message, message);
      else assert.match(err.message, message);
      return true;
    },
  );
}

test('defaults are gwlbtun\'s where it has one', () => {
  const o = parse([]);
  assert.equal(o.createScript, undefined);
  assert.equal(o.destroyScript, undefined);
  assert.equal(o.endpointIdleTimeoutS, 0); // never
  assert.equal(o.flowIdleTimeoutS, 350);
  assert.equal(o.healthPort, undefined); // no health server unless -p
  assert.equal(o.healthJson, false);
  assert.equal(o.healthDetails, true);
  assert.equal(o.hexDump, false);
  assert.equal(o.debug, false);
  assert.equal(o.logging, undefined);
  assert.deepEqual(Object.values(o.logLevels), ['info', 'info', 'info', 'info', 'info', 'info', 'info']);
  assert.equal(o.udpThreads, defaultThreads());
  assert.equal(o.tunThreads, defaultThreads());
  assert.deepEqual(o.udpAffinity, []);
  assert.deepEqual(o.tunAffinity, []);
  assert.equal(o.hookTimeoutS, 30);
  assert.equal(o.maxEndpoints, 64);
  assert.equal(o.endpointRatePerMinute, 30);
  assert.deepEqual(o.gwlbCidrs, []);
  assert.equal(o.bind, '0.0.0.0');
  assert.equal(o.logFormat, 'text');
  assert.equal(o.rcvbuf, 8 * 1024 * 1024);
  assert.equal(o.sndbuf, 8 * 1024 * 1024);
  assert.ok(defaultThreads() >= 1 && defaultThreads() <= 64);
});

test('a gwlbtun command line works unchanged', (t) => {
  const { exe } = files(t);
  const o = parse(['-c', exe, '-r', exe, '-t', '60', '-i', '120', '-p', '8080', '-j', '-s', '--udpthreads', '2', '--tunaffinity', '0-1,3', '--logging', 'core=debugdetail,UDP=Critical']);
  assert.equal(o.createScript, exe);
  assert.equal(o.destroyScript, exe);
  assert.equal(o.endpointIdleTimeoutS, 60);
  assert.equal(o.flowIdleTimeoutS, 120);
  assert.equal(o.healthPort, 8080);
  assert.equal(o.healthJson, true);
  assert.equal(o.healthDetails, false);
  assert.equal(o.udpThreads, 2);
  assert.deepEqual(o.udpAffinity, []);
  assert.equal(o.tunThreads, 3);
  assert.deepEqual(o.tunAffinity, [0, 1, 3]);
  assert.equal(o.logging, 'core=debugdetail,UDP=Critical');
  assert.equal(o.logLevels.core, 'debugdetail');
  assert.equal(o.logLevels.udp, 'critical');
  assert.equal(o.logLevels.tunnel, 'info');
  // getopt spellings: long forms with '=', attached short values, bundled short flags.
  const p = parse(['--cmdnew=' + exe, '--cmddel', exe, '--timeout=5', '--idle', '7', '--port=81', '-jxd', '-p8081']);
  assert.equal(p.createScript, exe);
  assert.equal(p.endpointIdleTimeoutS, 5);
  assert.equal(p.flowIdleTimeoutS, 7);
  assert.equal(p.healthPort, 8081, 'the last -p wins, as with getopt');
  assert.equal(p.healthJson, true);
  assert.equal(p.hexDump, true);
  assert.equal(p.debug, true);
});

test('-d is all=debug and --logging entries win over it', () => {
  const d = parse(['-d']);
  assert.ok(Object.values(d.logLevels).every((l) => l === 'debug'));
  const both = parse(['--logging', 'core=important', '-d']);
  assert.equal(both.logLevels.core, 'important');
  assert.equal(both.logLevels.geneve, 'debug');
  assert.equal(parse(['--logging', 'all=critical,hook=info']).logLevels.hook, 'info');
  assert.equal(parse(['--logging', 'all=critical,hook=info']).logLevels.endpoint, 'critical');
});

test('an affinity list takes precedence over the thread count', () => {
  const o = parse(['--udpthreads', '8', '--udpaffinity', '1']);
  assert.equal(o.udpThreads, 1);
  assert.deepEqual(o.udpAffinity, [1]);
});

test('hook files: resolved to absolute paths, must exist, be files and be executable', (t) => {
  const { exe, plain, dir } = files(t);
  assert.equal(parse(['-c', relative(process.cwd(), exe)]).createScript, exe);
  assert.equal(parse(['--createscript', exe, '--destroyscript', exe]).destroyScript, exe);
  rejects(['-c', plain], 'ERR_INVALID_ARG', `Expected an executable file for -c/--cmdnew but received ${JSON.stringify(plain)}: not executable (chmod +x)`);
  rejects(['-r', dir], 'ERR_INVALID_ARG', `Expected an executable file for -r/--cmddel but received ${JSON.stringify(dir)}: not a regular file`);
  rejects(['-r', join(dir, 'nope.sh')], 'ERR_INVALID_ARG', /for -r\/--cmddel but received ".*nope\.sh": no such file$/);
  rejects(['--createscript', `${exe} extra`], 'ERR_INVALID_ARG', /for --createscript but received ".* extra": no such file; it is run directly, not through a shell, so put extra arguments inside the script$/);
  rejects(['-c', ''], 'ERR_INVALID_ARG', 'Expected an executable file for -c/--cmdnew but received ""');
  rejects(['-c', exe, '--createscript', exe], 'ERR_USAGE', 'gatehouse tunnel: -c/--cmdnew and --createscript are the same setting; give one');
});

test('every invalid value names the flag and what it allows', () => {
  rejects(['-t', 'x'], 'ERR_INVALID_ARG', 'Expected an integer between 0 and 86400 for -t/--timeout but received "x"');
  rejects(['-t', '86401'], 'ERR_INVALID_ARG', 'Expected an integer between 0 and 86400 for -t/--timeout but received "86401"');
  rejects(['-i', '0'], 'ERR_INVALID_ARG', 'Expected an integer between 1 and 86400 for -i/--idle but received "0"');
  rejects(['-i', '3.5'], 'ERR_INVALID_ARG', /for -i\/--idle but received "3.5"/);
  rejects(['-p', '65536'], 'ERR_INVALID_ARG', 'Expected an integer between 0 and 65535 for -p/--port but received "65536"');
  rejects(['--udpthreads', '0'], 'ERR_INVALID_ARG', 'Expected an integer between 1 and 64 for --udpthreads but received "0"');
  rejects(['--tunthreads', '65'], 'ERR_INVALID_ARG', 'Expected an integer between 1 and 64 for --tunthreads but received "65"');
  const list = 'a list of CPU numbers and ranges like 0,2-3 (CPUs 0 to 1023, at most 64 threads)';
  for (const bad of ['', '1,', ',1', '2-1', '1-', 'a', '1024', '0-64', '1 ,2', '-1']) {
    rejects(['--udpaffinity=' + bad], 'ERR_INVALID_ARG', `Expected ${list} for --udpaffinity but received ${JSON.stringify(bad)}`);
  }
  rejects(['--logging', 'core'], 'ERR_INVALID_ARG', /Expected section=level entries separated by commas for --logging but received "core"/);
  rejects(['--logging', 'disk=info'], 'ERR_INVALID_ARG', /Expected a section \(core, udp, geneve, tunnel, endpoint, hook, healthcheck, all\) for --logging but received "disk"/);
  rejects(['--logging', 'core=loud'], 'ERR_INVALID_ARG', /Expected a level \(.*\) for --logging but received "loud"/);
  rejects(['--log-format', 'xml'], 'ERR_INVALID_ARG', 'Expected one of text, json for --log-format but received "xml"');
  rejects(['--hook-timeout', '0'], 'ERR_INVALID_ARG', 'Expected an integer between 1 and 3600 for --hook-timeout but received "0"');
  rejects(['--max-endpoints', '5000'], 'ERR_INVALID_ARG', 'Expected an integer between 1 and 4096 for --max-endpoints but received "5000"');
  rejects(['--endpoint-rate', '0'], 'ERR_INVALID_ARG', 'Expected an integer between 1 and 10000 for --endpoint-rate but received "0"');
  rejects(['--bind', '::'], 'ERR_INVALID_ARG', 'Expected an IPv4 address (GWLB sends GENEVE over IPv4) for --bind but received "::"');
  rejects(['--rcvbuf', '-1'], 'ERR_USAGE', /ambiguous|argument/);
  rejects(['--sndbuf', String(2 ** 30 + 1)], 'ERR_INVALID_ARG', /between 0 and 1073741824 for --sndbuf/);
  const cidr = 'comma-separated IPv4 prefixes with no host bits set, like 10.0.0.0/16,192.0.2.0/24 (at most 64)';
  rejects(['--gwlb-cidr', '192.0.2.1/24'], 'ERR_INVALID_ARG', `Expected ${cidr} for --gwlb-cidr but received "192.0.2.1/24" ("192.0.2.1/24" is not one)`);
  rejects(['--gwlb-cidr', '10.0.0.0/8,2001:db8::/32'], 'ERR_INVALID_ARG', /received "10.0.0.0\/8,2001:db8::\/32" \("2001:db8::\/32" is not one\)/);
  rejects(['--gwlb-cidr', Array.from({ length: 65 }, (_, i) => `10.${i}.0.0/16`).join(',')], 'ERR_INVALID_ARG', /at most 64/);
  rejects(['--frobnicate'], 'ERR_USAGE', /gatehouse tunnel: Unknown option '--frobnicate'/);
  rejects(['stray'], 'ERR_USAGE', /gatehouse tunnel: .*stray/);
  rejects(['-t'], 'ERR_USAGE', /-t/);
});

test('-p 0 means no health server, as in gwlbtun', () => {
  assert.equal(parse(['-p', '0']).healthPort, undefined);
  assert.equal(parse(['-p', '1']).healthPort, 1);
});

test('CPU lists and IPv4 prefixes', () => {
  assert.deepEqual(parseCpuList('1-2,4,7-8'), [1, 2, 4, 7, 8]);
  assert.deepEqual(parseCpuList('3,3'), [3, 3]);
  assert.deepEqual(parseCpuList('1023'), [1023]);
  assert.equal(parseCpuList('0-63')?.length, 64);
  assert.equal(parseCpuList('0-64'), undefined);
  assert.deepEqual(parseIpv4Prefix('192.0.2.0/24'), { address: '192.0.2.0', prefixLength: 24 });
  assert.deepEqual(parseIpv4Prefix('0.0.0.0/0'), { address: '0.0.0.0', prefixLength: 0 });
  assert.deepEqual(parseIpv4Prefix('198.51.100.7/32'), { address: '198.51.100.7', prefixLength: 32 });
  assert.deepEqual(parseIpv4Prefix('10.0.0.0/8'), { address: '10.0.0.0', prefixLength: 8 });
  for (const bad of ['10.0.0.0', '10.0.0.0/33', '10.1.0.0/8', '10.0.0/8', '10.0.0.256/32', '/8', '10.0.0.0/-1', '1.2.3.4/']) {
    assert.equal(parseIpv4Prefix(bad), undefined, bad);
  }
  const o = parse(['--gwlb-cidr', '10.0.0.0/16, 192.0.2.0/24']);
  assert.deepEqual(o.gwlbCidrs, [
    { address: '10.0.0.0', prefixLength: 16 },
    { address: '192.0.2.0', prefixLength: 24 },
  ]);
});

test('-h and --help ask for help, even with other flags', () => {
  assert.deepEqual(parseTunnelOptions(['-h']), { help: true });
  assert.deepEqual(parseTunnelOptions(['-t', '5', '--help']), { help: true });
});

/** One valid use of every flag and what it must set: proves each is accepted and does something. */
function everyFlag(exe: string): Record<TunnelFlag, [string[], (o: TunnelCliOptions) => unknown, unknown]> {
  return {
    cmdnew: [['-c', exe], (o) => o.createScript, exe],
    createscript: [['--createscript', exe], (o) => o.createScript, exe],
    cmddel: [['-r', exe], (o) => o.destroyScript, exe],
    destroyscript: [['--destroyscript', exe], (o) => o.destroyScript, exe],
    timeout: [['-t', '9'], (o) => o.endpointIdleTimeoutS, 9],
    idle: [['-i', '9'], (o) => o.flowIdleTimeoutS, 9],
    port: [['-p', '9'], (o) => o.healthPort, 9],
    json: [['-j'], (o) => o.healthJson, true],
    'status-only': [['-s'], (o) => o.healthDetails, false],
    debug: [['-d'], (o) => o.logLevels.core, 'debug'],
    hex: [['-x'], (o) => o.hexDump, true],
    udpthreads: [['--udpthreads', '3'], (o) => o.udpThreads, 3],
    udpaffinity: [['--udpaffinity', '5'], (o) => o.udpAffinity, [5]],
    tunthreads: [['--tunthreads', '3'], (o) => o.tunThreads, 3],
    tunaffinity: [['--tunaffinity', '5'], (o) => o.tunAffinity, [5]],
    logging: [['--logging', 'tunnel=debug'], (o) => o.logLevels.tunnel, 'debug'],
    help: [['-h'], () => undefined, undefined], // checked separately: returns { help: true }
    'hook-timeout': [['--hook-timeout', '9'], (o) => o.hookTimeoutS, 9],
    'max-endpoints': [['--max-endpoints', '9'], (o) => o.maxEndpoints, 9],
    'max-flows': [['--max-flows', '5000'], (o) => o.maxFlows, 5000],
    'endpoint-rate': [['--endpoint-rate', '9'], (o) => o.endpointRatePerMinute, 9],
    'gwlb-cidr': [['--gwlb-cidr', '192.0.2.0/24'], (o) => o.gwlbCidrs, [{ address: '192.0.2.0', prefixLength: 24 }]],
    bind: [['--bind', '127.0.0.1'], (o) => o.bind, '127.0.0.1'],
    'log-format': [['--log-format', 'json'], (o) => o.logFormat, 'json'],
    rcvbuf: [['--rcvbuf', '9'], (o) => o.rcvbuf, 9],
    sndbuf: [['--sndbuf', '9'], (o) => o.sndbuf, 9],
  };
}

test('every flag the parser accepts sets what it says', (t) => {
  const { exe } = files(t);
  const table = everyFlag(exe);
  assert.deepEqual(Object.keys(table).sort(), Object.keys(TUNNEL_FLAGS).sort(), 'the table covers every flag');
  for (const [flag, [argv, read, expected]] of Object.entries(table)) {
    if (flag === 'help') continue;
    assert.deepEqual(read(parse(argv)), expected, flag);
  }
});

test('the help lists exactly the flags the parser accepts, with the same short forms', () => {
  const listed = new Map<string, string | undefined>();
  for (const line of TUNNEL_HELP.split('\n')) {
    const m = /^ {2,6}(?:-([a-zA-Z]), )?--([a-z][a-z-]*)\b/.exec(line);
    if (m) listed.set(m[2], m[1]);
  }
  const accepted = new Map(Object.entries(TUNNEL_FLAGS).map(([long, spec]) => [long, (spec as { short?: string }).short]));
  assert.deepEqual([...listed.keys()].sort(), [...accepted.keys()].sort());
  for (const [long, short] of accepted) assert.equal(listed.get(long), short, `--${long}`);
  // No other flag is mentioned anywhere in the help text (prose included).
  for (const m of TUNNEL_HELP.matchAll(/(?<![\w-])--([a-z][a-z-]*)/g)) assert.ok(accepted.has(m[1]), `help mentions --${m[1]}`);
  const shorts = new Set([...accepted.values()].filter(Boolean));
  for (const m of TUNNEL_HELP.matchAll(/(?<=[\s(])-([a-zA-Z])(?=[\s,.)]|$)/gm)) assert.ok(shorts.has(m[1]), `help mentions -${m[1]}`);
  // Facts the help must keep right (gwlbtun's own help gets the ENI width wrong).
  assert.match(TUNNEL_HELP, /17 lowercase hex digits, zero-padded \(e\.g\. 00123456789abcdef\)/);
  assert.match(TUNNEL_HELP, /base 60 \(digits 0-9a-zA-X/);
});
