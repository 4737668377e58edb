import { test } from 'node:test';
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { GatehouseError } from '../../src/errors';
import {
  createLogger,
  LOG_CHANNEL_NAME,
  parseLoggingSpec,
  TUNNEL_LOG_SECTIONS,
  type LogEvent,
  type LoggerOptions,
  type TunnelLogSection,
} from '../../src/observe/log';

const CLOCK = (): Date => new Date('2024-05-06T07:08:09.010Z');

function capture(options: Partial<LoggerOptions<TunnelLogSection>> = {}) {
  const lines: string[] = [];
  const log = createLogger({ sections: TUNNEL_LOG_SECTIONS, clock: CLOCK, stream: { write: (l: string) => lines.push(l) }, ...options });
  return { log, lines };
}

// Values with spaces, quotes, '=' or control characters are JSON-quoted (objects too), so a line splits on spaces.
test('text lines: timestamp, level, [section], message, key=value fields', () => {
  const { log, lines } = capture();
  log.info('endpoint', 'created', { eni: 'vpce-0123456789abcdef0', gwi: 'gwi-1Fz', gwo: 'gwo-1Fz' });
  log.warning('hook', 'hook failed', { exit: 2, script: '/etc/gh/create hook.sh', ok: false, note: '', missing: undefined });
  log.error('core', 'odd\nmessage', { big: 2n ** 64n - 1n, err: Object.assign(new Error('bind failed'), { code: 'EADDRINUSE' }), obj: { a: [1, 2] }, nul: null });
  assert.deepEqual(lines, [
    '2024-05-06T07:08:09.010Z info [endpoint] created eni=vpce-0123456789abcdef0 gwi=gwi-1Fz gwo=gwo-1Fz\n',
    '2024-05-06T07:08:09.010Z warning [hook] hook failed exit=2 script="/etc/gh/create hook.sh" ok=false note=""\n',
    '2024-05-06T07:08:09.010Z error [core] odd\\nmessage big=18446744073709551615 err="EADDRINUSE: bind failed" obj="{\\"a\\":[1,2]}" nul=null\n',
  ]);
});

test('json lines: fixed fields time, level, section, msg first, then the fields', () => {
  const { log, lines } = capture({ format: 'json' });
  log.info('endpoint', 'created', { eni: 'vpce-0123', gwi: 'gwi-1', gwo: 'gwo-1' });
  log.error('core', 'failed', { err: Object.assign(new Error('bind failed'), { code: 'EADDRINUSE' }), n: 5n, level: 'clash', skip: undefined });
  const cyclic: Record<string, unknown> = {};
  cyclic.me = cyclic;
  log.important('core', 'cycle', { cyclic, fine: 1 });
  assert.deepEqual(lines, [
    '{"time":"2024-05-06T07:08:09.010Z","level":"info","section":"endpoint","msg":"created","eni":"vpce-0123","gwi":"gwi-1","gwo":"gwo-1"}\n',
    '{"time":"2024-05-06T07:08:09.010Z","level":"error","section":"core","msg":"failed","err":{"message":"bind failed","code":"EADDRINUSE"},"n":5,"_level":"clash"}\n',
    '{"time":"2024-05-06T07:08:09.010Z","level":"important","section":"core","msg":"cycle","cyclic":"[unserialisable]","fine":1}\n',
  ]);
  for (const l of lines) assert.equal(typeof JSON.parse(l), 'object');
});

test('levels are filtered per section; the default is info', () => {
  const { log, lines } = capture({ config: parseLoggingSpec('core=warning,udp=debug', TUNNEL_LOG_SECTIONS) });
  log.info('core', 'core info'); // filtered
  log.warning('core', 'core warning');
  log.critical('core', 'core critical');
  log.debug('udp', 'udp debug');
  log.debugdetail('udp', 'udp detail'); // filtered
  log.info('tunnel', 'tunnel info');
  log.debug('tunnel', 'tunnel debug'); // filtered
  assert.deepEqual(
    lines.map((l) => l.slice(25).trimEnd()),
    ['warning [core] core warning', 'critical [core] core critical', 'debug [udp] udp debug', 'info [tunnel] tunnel info'],
  );
  assert.equal(log.enabled('udp', 'debug'), true);
  assert.equal(log.enabled('core', 'important'), false);
});

test('parseLoggingSpec: case-insensitive, all= sets every section, later entries win', () => {
  const c = parseLoggingSpec(' ALL=Debug , udp=critical ', TUNNEL_LOG_SECTIONS);
  assert.deepEqual(c, {
    core: 'debug',
    udp: 'critical',
    geneve: 'debug',
    tunnel: 'debug',
    endpoint: 'debug',
    hook: 'debug',
    healthcheck: 'debug',
  });
  assert.deepEqual(parseLoggingSpec('udp=info,udp=debugdetail', ['udp']), { udp: 'debugdetail' });
  assert.deepEqual(parseLoggingSpec('', ['core', 'udp'], 'important'), { core: 'important', udp: 'important' });
  // gwlbtun's own strings work unchanged.
  assert.deepEqual(parseLoggingSpec('core=important,geneve=debugdetail', ['core', 'geneve']), { core: 'important', geneve: 'debugdetail' });
});

test('parseLoggingSpec: bad specs are rejected with ERR_INVALID_ARG and what is allowed', () => {
  const sections = 'core, udp, geneve, tunnel, endpoint, hook, healthcheck, all';
  const levels = 'critical, error, warning, important, info, debug, debugdetail';
  const cases: Array<[string, string]> = [
    ['core', 'Expected section=level entries separated by commas for --logging but received "core" in "core"'],
    ['core=info,', 'Expected section=level entries separated by commas for --logging but received "" in "core=info,"'],
    ['cor=info', `Expected a section (${sections}) for --logging but received "cor" in "cor=info"`],
    ['=info', `Expected a section (${sections}) for --logging but received "" in "=info"`],
    ['core=verbose', `Expected a level (${levels}) for --logging but received "verbose" in "core=verbose"`],
    ['udp=debug,core=', `Expected a level (${levels}) for --logging but received "" in "udp=debug,core="`],
  ];
  for (const [spec, message] of cases) {
    assert.throws(
      () => parseLoggingSpec(spec, TUNNEL_LOG_SECTIONS),
      (err: unknown) => err instanceof GatehouseError && err.code === 'ERR_INVALID_ARG' && err.message === message,
      spec,
    );
  }
});

test(`every event is published on diagnostics_channel '${LOG_CHANNEL_NAME}', filtered ones marked`, (t) => {
  const events: LogEvent[] = [];
  const onEvent = (e: unknown): void => void events.push(e as LogEvent);
  diagnosticsChannel.subscribe(LOG_CHANNEL_NAME, onEvent);
  t.after(() => diagnosticsChannel.unsubscribe(LOG_CHANNEL_NAME, onEvent));
  const { log, lines } = capture({ config: { endpoint: 'info' } });
  log.info('endpoint', 'created', { eni: 'vpce-1' });
  log.debug('endpoint', 'idle check', { eni: 'vpce-1' });
  assert.equal(lines.length, 1);
  assert.deepEqual(events, [
    { time: CLOCK(), level: 'info', section: 'endpoint', msg: 'created', fields: { eni: 'vpce-1' }, written: true },
    { time: CLOCK(), level: 'debug', section: 'endpoint', msg: 'idle check', fields: { eni: 'vpce-1' }, written: false },
  ]);
});
