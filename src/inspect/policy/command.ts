/**
 * `gatehouse policy check | test | import`: validate and explain a policy,
 * ask it about one flow, turn an AWS Network Firewall domain list into rules.
 */
import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { stringify } from 'yaml';
import { choiceFlag, intFlag, parseFlags, type FlagValues } from '../../cli/flags';
import { GatehouseError } from '../../errors';
import { parseDomainList } from './domain-list';
import { evaluate, pendingRule } from './evaluate';
import { explainPolicy } from './explain';
import { loadPolicyFile } from './load';
import { PROTOCOL_NUMBERS, ACTIONS, type Action, type AppFacts, type FlowFacts, type PolicyDecision, type PolicyRule } from './types';

export interface PolicyCommandIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

/** Exit codes of `policy test`, so scripts can branch on the verdict. */
export const EXIT = { allowed: 0, invalid: 1, usage: 2, denied: 3, notFinal: 4 } as const;

export const POLICY_HELP = `Usage: gatehouse policy <check|test|import> [options]

  check FILE      validate a policy and explain each rule in one line
  test FILE ...   the verdict for one flow, and the rule that decided
  import FILE     print policy rules for an AWS Network Firewall domain list

Run 'gatehouse policy <subcommand> --help' for its options.
`;

const CHECK_HELP = `Usage: gatehouse policy check FILE

Validates the policy (and the domain lists it imports) and explains it.
Exit 0 when valid; 1 with "file:line:column: reason" when not.
`;

const TEST_HELP = `Usage: gatehouse policy test FILE --src IP --dst IP [options]

  --src IP, --dst IP      the flow's addresses (IPv4 or IPv6)
  --proto P               tcp | udp | icmp | icmpv6 (default tcp; udp with --dns)
  --sport N, --dport N    ports (default dport: 443, 80 with --host, 53 with --dns)
  --sni NAME              the flow is TLS with this SNI
  --host NAME             the flow is HTTP with this Host
  --dns NAME              the flow is a DNS query for NAME (--qtype A, default A)
  --payload KIND          tls-no-sni | tls-unparsable | other (a payload without a name)
  --endpoint ID           the GWLB endpoint (vpce-... or 17 hex digits; default 0)
  --midstream             the flow arrived mid-stream (no TCP SYN seen)
  --json                  print the decision as JSON

Without --sni/--host/--dns/--payload the flow is at its first packet (no
payload yet): the verdict may be "not final" when a name rule could match.
Exit codes: 0 allow or alert, 3 drop or reject, 4 not final, 1 invalid policy, 2 usage.
`;

const IMPORT_HELP = `Usage: gatehouse policy import FILE [--action ACTION] [--id ID]

Reads an AWS Network Firewall domain list (text: one example.com or
.example.com per line; or JSON with RulesSourceList) and prints it as a
policy rule to paste under rules:.
  --action ACTION   allow | drop | reject | alert (default: the list's
                    GeneratedRulesType, else allow)
  --id ID           the rule id (default: the file name)
`;

const QTYPES: Readonly<Record<string, number>> = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, HTTPS: 65, ANY: 255 };

export async function runPolicyCommand(argv: string[], io: PolicyCommandIo): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    switch (sub) {
      case 'check':
        return await runCheck(rest, io);
      case 'test':
        return await runTest(rest, io);
      case 'import':
        return await runImport(rest, io);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.stdout(POLICY_HELP);
        return 0;
      default:
        io.stderr(`gatehouse policy: unknown subcommand ${JSON.stringify(sub)}\n\n${POLICY_HELP}`);
        return EXIT.usage;
    }
  } catch (err) {
    if (!(err instanceof GatehouseError)) throw err;
    io.stderr(err.code === 'ERR_POLICY' ? err.message : `gatehouse policy: ${err.message}`);
    return err.code === 'ERR_POLICY' ? EXIT.invalid : EXIT.usage;
  }
}

function onePositional(positionals: string[], command: string): string {
  if (positionals.length !== 1) throw new GatehouseError('ERR_USAGE', `${command}: expected one FILE but received ${positionals.length} (see '${command} --help')`);
  return positionals[0];
}

async function runCheck(argv: string[], io: PolicyCommandIo): Promise<number> {
  const { values, positionals } = parseFlags(argv, { help: { type: 'boolean', short: 'h' } }, 'gatehouse policy check', true);
  if (values.help) {
    io.stdout(CHECK_HELP);
    return 0;
  }
  const policy = await loadPolicyFile(onePositional(positionals, 'gatehouse policy check'));
  io.stdout(explainPolicy(policy).join('\n'));
  return 0;
}

const TEST_FLAGS = {
  help: { type: 'boolean', short: 'h' },
  src: { type: 'string' },
  dst: { type: 'string' },
  proto: { type: 'string' },
  sport: { type: 'string' },
  dport: { type: 'string' },
  sni: { type: 'string' },
  host: { type: 'string' },
  dns: { type: 'string' },
  qtype: { type: 'string' },
  payload: { type: 'string' },
  endpoint: { type: 'string' },
  midstream: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

function requireAddress(values: FlagValues, flag: 'src' | 'dst'): string {
  const raw = values[flag];
  if (typeof raw !== 'string') throw new GatehouseError('ERR_USAGE', `gatehouse policy test: --${flag} IP is required (see 'gatehouse policy test --help')`);
  return raw;
}

/** The payload the flags describe, or undefined for "first packet". */
function appFacts(values: FlagValues): AppFacts | undefined {
  const given = (['sni', 'host', 'dns', 'payload'] as const).filter((f) => values[f] !== undefined);
  if (given.length > 1) throw new GatehouseError('ERR_USAGE', `gatehouse policy test: give one of --sni, --host, --dns, --payload (received ${given.map((f) => `--${f}`).join(', ')})`);
  if (values.sni !== undefined) return { kind: 'tls', sni: String(values.sni) };
  if (values.host !== undefined) return { kind: 'http', host: String(values.host) };
  if (values.dns !== undefined) {
    const qtype = choiceFlag(values, 'qtype', 'A', Object.keys(QTYPES));
    return { kind: 'dns', query: String(values.dns), qtype: QTYPES[qtype] };
  }
  if (values.payload !== undefined) {
    const kind = choiceFlag(values, 'payload', 'other', ['tls-no-sni', 'tls-unparsable', 'other'] as const);
    return kind === 'tls-no-sni' ? { kind: 'tls', sni: null } : { kind };
  }
  return undefined;
}

function endpointFlag(values: FlagValues): bigint {
  const raw = values.endpoint;
  if (raw === undefined) return 0n;
  const m = /^(?:(?:vpce|eni)-)?([0-9a-fA-F]{1,17})$/.exec(String(raw));
  const id = m ? BigInt(`0x${m[1]}`) : -1n;
  if (id < 0n || id >> 64n !== 0n) {
    throw new GatehouseError('ERR_INVALID_ARG', `Expected a GWLB endpoint id (vpce-0123456789abcdef0 or 17 hex digits) for --endpoint but received ${JSON.stringify(String(raw))}`);
  }
  return id;
}

function flowFacts(values: FlagValues): FlowFacts {
  const app = appFacts(values);
  const protoName = choiceFlag(values, 'proto', app?.kind === 'dns' ? 'udp' : 'tcp', ['tcp', 'udp', 'icmp', 'icmpv6'] as const);
  const defaultPort = app?.kind === 'dns' ? 53 : app?.kind === 'http' ? 80 : 443;
  return {
    endpoint: endpointFlag(values),
    src: requireAddress(values, 'src'),
    dst: requireAddress(values, 'dst'),
    protocol: PROTOCOL_NUMBERS[protoName],
    srcPort: intFlag(values, 'sport', 40000, 0, 65535),
    dstPort: intFlag(values, 'dport', defaultPort, 0, 65535),
    midstream: values.midstream === true,
    ...(app === undefined ? {} : { app }),
  };
}

/** What a pending rule needs to be decided: its name keys as test flags. */
function neededNames(rule: PolicyRule): string[] {
  const needs: string[] = [];
  if (rule.match.tlsSni !== null) needs.push('--sni NAME (TLS SNI)');
  if (rule.match.httpHost !== null) needs.push('--host NAME (HTTP Host)');
  if (rule.match.dnsQuery !== null) needs.push('--dns NAME (DNS query)');
  return needs;
}

function ruleJson(rule: PolicyRule | null): object | null {
  return rule === null ? null : { id: rule.id, sid: rule.sid, position: rule.position, line: rule.line, message: rule.message };
}

async function runTest(argv: string[], io: PolicyCommandIo): Promise<number> {
  const { values, positionals } = parseFlags(argv, TEST_FLAGS, 'gatehouse policy test', true);
  if (values.help) {
    io.stdout(TEST_HELP);
    return 0;
  }
  const file = onePositional(positionals, 'gatehouse policy test');
  const facts = flowFacts(values);
  const policy = await loadPolicyFile(file);
  const decision: PolicyDecision = evaluate(policy, facts);
  if (!decision.final) {
    const rule = pendingRule(policy, facts);
    const needs = rule !== null ? neededNames(rule) : ['--payload tls-no-sni|tls-unparsable|other, or --sni NAME'];
    if (values.json) {
      io.stdout(JSON.stringify({ final: false, waiting_for: ruleJson(rule), needs }));
    } else {
      io.stdout('verdict: not final without the payload');
      io.stdout(
        rule !== null
          ? `waiting for: rule ${rule.id} (line ${rule.line}) matches on names; give ${needs.join(' or ')}`
          : `waiting for: the TLS ClientHello (tls_without_sni or tls_unparsable differ from the default); give ${needs[0]}`,
      );
    }
    return EXIT.notFinal;
  }
  if (values.json) {
    io.stdout(
      JSON.stringify({
        final: true,
        action: decision.action,
        reason: decision.reason,
        rule: ruleJson(decision.rule),
        verify_dns: decision.verifyDns ? { on_mismatch: decision.verifyDns.onMismatch } : null,
      }),
    );
  } else {
    io.stdout(`verdict: ${decision.action}`);
    if (decision.rule !== null) {
      io.stdout(`rule: ${decision.rule.id} (sid ${decision.rule.sid}, line ${decision.rule.line}): ${decision.rule.message}`);
    } else {
      const why: Record<string, string> = {
        default: `the default (no rule matched; default ${policy.defaultAction === 'drop' ? 'deny' : 'allow'})`,
        midstream: `midstream: ${policy.midstream} (the flow arrived mid-stream)`,
        'tls-without-sni': `tls_without_sni: ${policy.tlsWithoutSni} (TLS without SNI; no rule matched)`,
        'tls-unparsable': `tls_unparsable: ${policy.tlsUnparsable} (unparsable TLS; no rule matched)`,
      };
      io.stdout(`decided by: ${why[decision.reason]}`);
    }
    if (decision.verifyDns) io.stdout(`verify_dns: the name must resolve to ${facts.dst}, else ${decision.verifyDns.onMismatch}`);
    if (values.endpoint === undefined && decision.reason !== 'midstream' && policy.rules.some((r) => r.match.endpoint !== null)) {
      io.stdout('note: no --endpoint given, so rules with an endpoint key did not match');
    }
  }
  return decision.action === 'allow' || decision.action === 'alert' ? EXIT.allowed : EXIT.denied;
}

/** A rule id from a file name: "allowed-domains.txt" -> "allowed-domains". */
function idFromFile(file: string): string {
  const id = basename(file, extname(file)).replace(/[^A-Za-z0-9._:/@-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return id === '' ? 'imported' : id.slice(0, 128);
}

async function runImport(argv: string[], io: PolicyCommandIo): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    { help: { type: 'boolean', short: 'h' }, action: { type: 'string' }, id: { type: 'string' } },
    'gatehouse policy import',
    true,
  );
  if (values.help) {
    io.stdout(IMPORT_HELP);
    return 0;
  }
  const file = onePositional(positionals, 'gatehouse policy import');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new GatehouseError('ERR_POLICY', `${file}:1:1: Expected a readable domain list file but received ${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  const list = parseDomainList(text, file);
  const action: Action = choiceFlag(values, 'action', list.action ?? 'allow', ACTIONS);
  const id = values.id !== undefined ? String(values.id) : idFromFile(file);
  if (!/^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$/.test(id)) {
    throw new GatehouseError('ERR_INVALID_ARG', `Expected an id (letters, digits and . _ : / @ -, starting with a letter or digit) for --id but received ${JSON.stringify(id)}`);
  }
  const targets = [list.tlsSni ? 'TLS SNI' : '', list.httpHost ? 'HTTP Host' : ''].filter(Boolean).join(' and ');
  const rule: Record<string, unknown> = {
    id,
    action,
    message: `${action} ${targets} for the ${list.patterns.length} names of ${basename(file)}`,
  };
  if (list.tlsSni) rule.tls_sni = list.patterns;
  if (list.httpHost) rule.http_host = list.patterns;
  io.stdout(`# ${list.patterns.length} names from ${file} (${list.format} form; ${targets})`);
  io.stdout(stringify({ rules: [rule] }, { lineWidth: 0, aliasDuplicateObjects: false }).trimEnd());
  return 0;
}
