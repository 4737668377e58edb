import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HOOK_OUTPUT_LIMIT, hookArguments, runHook, type HookRequest } from '../../src/tunnel/hooks';

const ENI = 0x123456789abcdefn;
const base = { action: 'CREATE', gwi: 'gwi-887epl1uMf', gwo: 'gwo-887epl1uMf', eni: ENI, timeoutMs: 10_000 } as const;

/** A temp dir with helpers to write scripts into it; removed after the test. */
function scratch(t: TestContext): { dir: string; script: (name: string, body: string, mode?: number) => string } {
  const dir = mkdtempSync(join(tmpdir(), 'gh-hooks-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    script: (name, body, mode = 0o755) => {
      const path = join(dir, name);
      writeFileSync(path, body);
      chmodSync(path, mode);
      return path;
    },
  };
}

function alive(pid: number): boolean {
  try {
    // A zombie (state Z) has finished; only its parent has not reaped it yet.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Pids of live processes whose process group is `pgid`. */
function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') out.push(Number(entry));
    } catch {
      /* exited while we looked */
    }
  }
  return out;
}

/** Waits (bounded) until `done()` holds; returns whether it did. Not a timing assertion: 10 s is a ceiling. */
async function eventually(done: () => boolean, ceilingMs = 10_000): Promise<boolean> {
  const until = Date.now() + ceilingMs;
  while (Date.now() < until) {
    if (done()) return true;
    await sleep(20);
  }
  return done();
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

test('hookArguments: gwlbtun order, ENI as 17-digit zero-padded hex', () => {
  assert.deepEqual(hookArguments('DESTROY', 'gwi-0', 'gwo-0', 0n), ['DESTROY', 'gwi-0', 'gwo-0', '00000000000000000']);
  assert.deepEqual(hookArguments('CREATE', 'gwi-x', 'gwo-x', ENI), ['CREATE', 'gwi-x', 'gwo-x', '00123456789abcdef']);
});

test('the script receives exactly $0 and the four gwlbtun arguments, with no shell in between', async (t) => {
  const { dir, script } = scratch(t);
  const out = join(dir, 'args');
  const hook = script('record.sh', '#!/bin/sh\nfor a in "$0" "$@"; do printf "%s\\n" "$a"; done > "$OUT"\necho "hello from $1"\necho oops >&2\n');
  // Shell metacharacters in a name must arrive verbatim and run nothing.
  const gwi = 'gwi-$(touch)>x;';
  const r = await runHook({ ...base, gwi, script: hook, env: { OUT: out } });
  assert.equal(r.reason, undefined);
  assert.equal(r.ok, true);
  assert.equal(r.code, 0);
  assert.equal(r.signal, null);
  assert.equal(r.timedOut, false);
  assert.equal(r.stdout, 'hello from CREATE\n');
  assert.equal(r.stderr, 'oops\n');
  assert.ok(r.durationMs >= 0);
  assert.deepEqual(readFileSync(out, 'utf8').split('\n'), [hook, 'CREATE', gwi, 'gwo-887epl1uMf', '00123456789abcdef', '']);
  assert.equal(existsSync(join(dir, 'x')), false);
});

test('the environment is gatehouse\'s plus env', async (t) => {
  const { script } = scratch(t);
  const hook = script('env.sh', '#!/bin/sh\necho "$GH_EXTRA:$PATH"\n');
  const r = await runHook({ ...base, script: hook, env: { GH_EXTRA: 'yes' } });
  assert.equal(r.stdout, `yes:${process.env.PATH}\n`);
});

test('a failing script is a result, not an exception: exit codes and signals', async (t) => {
  const { script } = scratch(t);
  const three = await runHook({ ...base, action: 'DESTROY', script: script('three.sh', '#!/bin/sh\necho "cannot $1" >&2\nexit 3\n') });
  assert.equal(three.ok, false);
  assert.equal(three.code, 3);
  assert.equal(three.signal, null);
  assert.equal(three.timedOut, false);
  assert.equal(three.reason, 'exited with code 3');
  assert.equal(three.stderr, 'cannot DESTROY\n');

  const term = await runHook({ ...base, script: script('term.sh', '#!/bin/sh\nkill -TERM $$\nsleep 5\n') });
  assert.equal(term.ok, false);
  assert.equal(term.code, null);
  assert.equal(term.signal, 'SIGTERM');
  assert.equal(term.reason, 'killed by SIGTERM');
});

test('on timeout the whole process group is killed, a child it spawned too', async (t) => {
  const { dir, script } = scratch(t);
  const pidFile = join(dir, 'child.pid');
  const hook = script('slow.sh', `#!/bin/bash\nsleep 300 &\necho $! > "${pidFile}.tmp" && mv "${pidFile}.tmp" "${pidFile}"\necho started\nsleep 300\n`);
  const r = await runHook({ ...base, script: hook, timeoutMs: 1500 });
  const child = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
  if (child > 1) t.after(() => killQuietly(child));
  assert.equal(r.ok, false);
  assert.equal(r.timedOut, true);
  assert.equal(r.signal, 'SIGKILL');
  assert.equal(r.code, null);
  assert.equal(r.reason, 'timed out after 1500 ms; its process group was killed');
  assert.equal(r.stdout, 'started\n', 'the script got as far as starting its child');
  assert.ok(child > 1, 'the script wrote its child\'s pid');
  assert.ok(await eventually(() => !alive(child)), `the background child ${child} is gone`);
});

test('the process group is empty after a timeout', async (t) => {
  const { dir, script } = scratch(t);
  const pgidFile = join(dir, 'pgid');
  // $$ is the group leader: spawn(detached) made it a new session and group.
  const hook = script('group.sh', `#!/bin/bash\n(sleep 300; true) &\n(sleep 300; true) &\necho $$ > "${pgidFile}"\nwait\n`);
  const r = await runHook({ ...base, script: hook, timeoutMs: 1500 });
  const pgid = Number(readFileSync(pgidFile, 'utf8'));
  assert.ok(pgid > 1, 'the script wrote its process group id');
  t.after(() => killQuietly(-pgid)); // the whole group, should the test fail
  assert.equal(r.timedOut, true);
  assert.ok(await eventually(() => groupMembers(pgid).length === 0), `group ${pgid} still has ${groupMembers(pgid).join(', ')}`);
});

test('output beyond the cap is counted, not kept', async (t) => {
  const { script } = scratch(t);
  const hook = script('loud.sh', '#!/bin/sh\nhead -c 1000000 /dev/zero | tr "\\0" a\nhead -c 70000 /dev/zero | tr "\\0" b >&2\n');
  const r = await runHook({ ...base, script: hook });
  assert.equal(r.ok, true);
  const marker = (n: number): string => `\n[gatehouse: output truncated, ${n} more bytes not kept]`;
  assert.equal(r.stdout, 'a'.repeat(HOOK_OUTPUT_LIMIT) + marker(1_000_000 - HOOK_OUTPUT_LIMIT));
  assert.equal(r.stderr, 'b'.repeat(HOOK_OUTPUT_LIMIT) + marker(70_000 - HOOK_OUTPUT_LIMIT));

  const small = await runHook({ ...base, script: hook, outputLimit: 10 });
  assert.equal(small.stdout, 'a'.repeat(10) + marker(1_000_000 - 10));
});

test('a script that leaves a daemon holding its stdout still completes', async (t) => {
  const { dir, script } = scratch(t);
  const pidFile = join(dir, 'daemon.pid');
  const hook = script('daemon.sh', `#!/bin/sh\nsleep 60 &\necho $! > "${pidFile}"\necho done\nexit 0\n`);
  const r = await runHook({ ...base, script: hook });
  const daemon = Number(readFileSync(pidFile, 'utf8'));
  assert.ok(daemon > 1, 'the script wrote its daemon\'s pid');
  t.after(() => killQuietly(daemon));
  assert.equal(r.ok, true);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'done\n');
  // As with gwlbtun's system(), what the script started on purpose keeps running.
  assert.equal(alive(daemon), true);
});

test('scripts that cannot start are reported clearly', async (t) => {
  const { dir, script } = scratch(t);
  const notExecutable = script('plain.sh', '#!/bin/sh\nexit 0\n', 0o644);
  const r1 = await runHook({ ...base, script: notExecutable });
  assert.equal(r1.ok, false);
  assert.equal(r1.code, null);
  assert.equal(r1.timedOut, false);
  assert.equal(r1.reason, `${notExecutable} is not executable (EACCES): it needs the execute bit (chmod +x) and a searchable directory`);

  const missing = join(dir, 'missing.sh');
  const r2 = await runHook({ ...base, script: missing });
  assert.equal(r2.ok, false);
  assert.equal(r2.reason, `${missing} was not found (ENOENT), or its #! interpreter was not`);

  const badInterpreter = script('bad-interp.sh', '#!/nonexistent/interpreter\nexit 0\n');
  const r3 = await runHook({ ...base, script: badInterpreter });
  assert.equal(r3.ok, false);
  assert.match(r3.reason ?? '', /ENOENT/);
});

test('programming errors throw ERR_INVALID_ARG', async (t) => {
  const { script } = scratch(t);
  const ok = script('ok.sh', '#!/bin/sh\n');
  const cases: Array<[Partial<HookRequest>, RegExp]> = [
    [{ action: 'UPDATE' as 'CREATE' }, /Expected CREATE or DESTROY for hook action but received "UPDATE"/],
    [{ script: '' }, /Expected a file path for hook script/],
    [{ gwi: 'gwi 1' }, /Expected an interface name .* for gwi but received "gwi 1"/],
    [{ gwo: 'gwo-0123456789ab' }, /for gwo but received "gwo-0123456789ab"/],
    [{ eni: -1n }, /Expected bigint between 0 and 2\^64-1 for eni/],
    [{ timeoutMs: 0 }, /Expected an integer between 1 and 86400000 for hook timeoutMs but received "0"/],
    [{ timeoutMs: 1.5 }, /for hook timeoutMs/],
  ];
  for (const [patch, message] of cases) {
    assert.throws(() => runHook({ ...base, script: ok, ...patch }), { code: 'ERR_INVALID_ARG', message }, JSON.stringify(patch, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)));
  }
});
