import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GatehouseError } from '../../../src/errors';
import { evaluate, parseDomainList } from '../../../src/inspect/policy';
import { flow, policyFrom } from './helpers';

test('text form: one name per line, comments and blanks skipped, CRLF and duplicates tolerated', () => {
  const list = parseDomainList('# allowed\r\n.Example.com\r\n\r\n  api.allowed.test  \r\n.example.com.\r\n', 'l.txt');
  assert.deepEqual(list, { format: 'text', patterns: ['.example.com', 'api.allowed.test'], tlsSni: true, httpHost: true, action: null });
});

const RULES_SOURCE_LIST = { Targets: ['.example.com', 'api.allowed.test'], TargetTypes: ['TLS_SNI'], GeneratedRulesType: 'ALLOWLIST' };

test('JSON form: RulesSourceList bare, in RulesSource, in RuleGroup (as describe-rule-group prints it)', () => {
  const forms = [
    RULES_SOURCE_LIST,
    { RulesSourceList: RULES_SOURCE_LIST },
    { RulesSource: { RulesSourceList: RULES_SOURCE_LIST } },
    { UpdateToken: 'x', RuleGroup: { RuleVariables: {}, RulesSource: { RulesSourceList: RULES_SOURCE_LIST } }, RuleGroupResponse: { RuleGroupName: 'g' } },
  ];
  for (const form of forms) {
    assert.deepEqual(parseDomainList(JSON.stringify(form, null, 2), 'l.json'), {
      format: 'json',
      patterns: ['.example.com', 'api.allowed.test'],
      tlsSni: true,
      httpHost: false,
      action: 'allow',
    });
  }
  const types: Array<[string, string]> = [['DENYLIST', 'drop'], ['REJECTLIST', 'reject'], ['ALERTLIST', 'alert']];
  for (const [type, action] of types) {
    const list = parseDomainList(JSON.stringify({ ...RULES_SOURCE_LIST, TargetTypes: ['HTTP_HOST'], GeneratedRulesType: type }), 'l.json');
    assert.equal(list.action, action);
    assert.equal(list.httpHost, true);
    assert.equal(list.tlsSni, false);
  }
});

test('JSON form mistakes point into the list', () => {
  const refused = (text: string, message: string): void => {
    assert.throws(
      () => parseDomainList(text, 'l.json'),
      (err: unknown) => {
        assert.ok(err instanceof GatehouseError);
        assert.equal(err.code, 'ERR_POLICY');
        assert.equal(err.message, message);
        return true;
      },
    );
  };
  refused('{"RulesSource": {"StatefulRules": []}}', 'l.json:1:17: Expected a RulesSourceList with Targets (bare, or inside RulesSource or RuleGroup) for the domain list but received keys StatefulRules');
  refused('{"Targets": ["a..b"], "TargetTypes": ["TLS_SNI"], "GeneratedRulesType": "ALLOWLIST"}', 'l.json:1:14: Expected a domain (example.com, or .example.com for the domain and its subdomains) for Targets but received "a..b" (an empty label)');
  refused('{"Targets": ["a.b"], "TargetTypes": ["TLS_SNI"]}', 'l.json:1:1: Expected a GeneratedRulesType key for RulesSourceList but received a list without one');
  refused('{"Targets": ["a.b"], "TargetTypes": ["TLS_SNI"], "GeneratedRulesType": "PASS"}', 'l.json:1:72: Expected one of ALLOWLIST, DENYLIST, REJECTLIST, ALERTLIST for GeneratedRulesType but received "PASS"');
  refused('{"Targets": ["a.b"], "TargetTypes": ["TLS_SNI"], "GeneratedRulesType": "ALLOWLIST", "Extra": 1}', 'l.json:1:85: Expected one of Targets, TargetTypes, GeneratedRulesType for a RulesSourceList key but received "Extra"');
});

test('imported lists become rule names: text for SNI and Host, JSON for its target types and action', () => {
  const policy = policyFrom(
    'rules:\n  - id: blocked\n    domain_list: lists/blocked.json\n  - id: allowed\n    action: allow\n    domain_list: [lists/allowed.txt]\n    tls_sni: extra.test\n',
    {
      'lists/allowed.txt': '.example.com\napi.allowed.test\n',
      'lists/blocked.json': JSON.stringify({ RulesSourceList: { Targets: ['bad.example.com'], TargetTypes: ['TLS_SNI'], GeneratedRulesType: 'REJECTLIST' } }),
    },
  );
  const [blocked, allowed] = policy.rules;
  assert.equal(blocked.action, 'reject');
  assert.deepEqual(blocked.match.tlsSni, ['bad.example.com']);
  assert.equal(blocked.match.httpHost, null);
  assert.deepEqual(blocked.domainLists, [{ path: 'lists/blocked.json', format: 'json', names: 1 }]);
  assert.deepEqual(allowed.match.tlsSni, ['.example.com', 'api.allowed.test', 'extra.test']);
  assert.deepEqual(allowed.match.httpHost, ['.example.com', 'api.allowed.test']);
  const decide = (sni: string): string => {
    const d = evaluate(policy, flow({ app: { kind: 'tls', sni } }));
    return d.final ? `${d.action} ${d.rule?.id ?? '-'}` : 'pending';
  };
  assert.equal(decide('bad.example.com'), 'reject blocked');
  assert.equal(decide('good.example.com'), 'allow allowed');
  assert.equal(decide('extra.test'), 'allow allowed');
  assert.equal(decide('other.test'), 'drop -');
  assert.equal(allowed.message, 'allow when TLS SNI is example.com (or a subdomain), api.allowed.test or extra.test (from lists/allowed.txt), or HTTP Host is example.com (or a subdomain) or api.allowed.test (from lists/allowed.txt)');
});
