import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEmuOptions } from '../../src/emu/options';
import { GatehouseError } from '../../src/errors';
import { GENEVE_REASONS } from '../../src/geneve/reasons';

function rejects(argv: string[], code: string, message: RegExp): void {
  assert.throws(
    () => parseEmuOptions(argv),
    (err: unknown) => err instanceof GatehouseError && err.code === code && message.test(err.message),
    `${argv.join(' ')} should fail with ${code} ${message}`,
  );
}

test('generator defaults', () => {
  const o = parseEmuOptions(['--target', '192.0.2.2']);
  assert.equal(o.mode, 'generate');
  if (o.mode !== 'generate') return;
  assert.equal(o.port, 6081);
  assert.equal(o.rate, 10000);
  assert.equal(o.durationS, 5);
  assert.equal(o.size, 128);
  assert.equal(o.flows, 100);
  assert.equal(o.enis, 1);
  assert.equal(o.protocol, 'udp');
  assert.deepEqual(o.kinds, [...GENEVE_REASONS]);
  assert.equal(o.bind, undefined);
});

test('every flag is validated with a message naming the flag and what is allowed', () => {
  const t = ['--target', '192.0.2.2'];
  rejects(['--rate', '100'], 'ERR_USAGE', /--target ADDR is required/);
  rejects(['--target', 'example.com'], 'ERR_INVALID_ARG', /Expected an IPv4 address for --target but received "example.com"/);
  rejects([...t, '--rate=-5'], 'ERR_INVALID_ARG', /Expected an integer between 0 and 10000000 for --rate but received "-5"/);
  rejects([...t, '--rate', '-5'], 'ERR_USAGE', /argument is ambiguous/);
  rejects([...t, '--rate', 'fast'], 'ERR_INVALID_ARG', /Expected an integer between 0 and 10000000 for --rate but received "fast"/);
  rejects([...t, '--port', '70000'], 'ERR_INVALID_ARG', /between 1 and 65535 for --port/);
  rejects([...t, '--duration', '0'], 'ERR_INVALID_ARG', /for --duration/);
  rejects([...t, '--enis', '0'], 'ERR_INVALID_ARG', /between 1 and 1024 for --enis/);
  rejects([...t, '--enis', '5', '--flows', '2'], 'ERR_INVALID_ARG', /--flows at least --enis/);
  rejects([...t, '--proto', 'sctp'], 'ERR_INVALID_ARG', /Expected one of udp, tcp, icmp for --proto but received "sctp"/);
  rejects([...t, '--v6', '101'], 'ERR_INVALID_ARG', /between 0 and 100 for --v6/);
  rejects([...t, '--size', '9000'], 'ERR_INVALID_ARG', /between 52 and 8500 for --size/);
  rejects([...t, '--proto', 'tcp', '--v6', '10', '--size', '80'], 'ERR_INVALID_ARG', /between 84 and 8500 for --size/);
  rejects([...t, '--sports', '65'], 'ERR_INVALID_ARG', /between 1 and 64 for --sports/);
  rejects([...t, '--search', '5:1'], 'ERR_INVALID_ARG', /LO:HI .* for --search but received "5:1"/);
  rejects([...t, '--malformed', '60'], 'ERR_INVALID_ARG', /between 0 and 50 for --malformed/);
  rejects([...t, '--malformed', '1', '--kinds', 'bad_version,nope'], 'ERR_INVALID_ARG', /comma-separated list of .* for --kinds but received "bad_version,nope"/);
  rejects([...t, '--kinds', 'bad_version'], 'ERR_USAGE', /--kinds .* needs --malformed/);
  rejects([...t, '--flows', '1000000', '--size', '8500'], 'ERR_INVALID_ARG', /256 MiB/);
  rejects([...t, '--bogus'], 'ERR_USAGE', /Unknown option '--bogus'/);
  rejects([...t, '--validate'], 'ERR_USAGE', /--validate cannot be used with the generator/);
  rejects(['--echo', '--target', '192.0.2.2'], 'ERR_USAGE', /--target cannot be used with --echo/);
  rejects(['--echo', '--threads', '17'], 'ERR_INVALID_ARG', /between 1 and 16 for --threads/);
  rejects(['--echo', '--threads', '2', '--udpthreads', '2'], 'ERR_USAGE', /not both/);
});

test('a count alone still bounds the run in time', () => {
  const o = parseEmuOptions(['--target', '192.0.2.2', '--count', '1000']);
  assert.ok(o.mode === 'generate' && o.count === 1000 && o.durationS === 600);
});

test('echo options', () => {
  const o = parseEmuOptions(['--echo', '--bind', '192.0.2.2', '--udpthreads', '2', '--validate']);
  assert.deepEqual(
    { mode: o.mode, ...(o.mode === 'echo' ? { bind: o.bind, threads: o.threads, validate: o.validate, port: o.port } : {}) },
    { mode: 'echo', bind: '192.0.2.2', threads: 2, validate: true, port: 6081 },
  );
});
