import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describePattern, hostWithoutPort, normaliseFlowName, parseNamePattern, patternText } from '../../../src/inspect/policy/names';

test('patterns are normalised: lowercase, trailing dot dropped, IDN to punycode', () => {
  const text = (raw: string): string => {
    const r = parseNamePattern(raw);
    assert.ok(r.ok, raw);
    return patternText(r.pattern);
  };
  assert.equal(text('Example.COM'), 'example.com');
  assert.equal(text('.Example.com.'), '.example.com');
  assert.equal(text('*.example.com.'), '*.example.com');
  assert.equal(text('.bücher.example'), '.xn--bcher-kva.example');
  assert.equal(text('_dmarc.example.com'), '_dmarc.example.com');
  assert.equal(text('.com'), '.com');
});

test('what is not a pattern, and why', () => {
  const problem = (raw: string): string => {
    const r = parseNamePattern(raw);
    assert.ok(!r.ok, raw);
    return r.problem;
  };
  assert.equal(problem(''), 'an empty name');
  assert.equal(problem('.'), 'an empty name');
  assert.equal(problem('*.'), 'an empty name');
  assert.equal(problem('a..b'), 'an empty label');
  assert.equal(problem('..example.com'), 'an empty label');
  assert.equal(problem('a.*.b'), 'a "*" that is not the leading "*." label');
  assert.equal(problem('*example.com'), 'a "*" that is not the leading "*." label');
  assert.equal(problem('**.example.com'), 'a "*" that is not the leading "*." label');
  assert.equal(problem('exa mple.com'), 'the character " "');
  assert.equal(problem('example.com/path'), 'the character "/"');
  assert.equal(problem(`${'a'.repeat(64)}.com`), 'a label longer than 63 characters');
  assert.equal(problem(`${'abcdefghi.'.repeat(26)}com`), 'a name longer than 253 characters');
});

test('flow names: lowercase, trailing dot, IDN; empty is no name', () => {
  assert.equal(normaliseFlowName('WWW.Example.COM.'), 'www.example.com');
  assert.equal(normaliseFlowName('shop.bücher.example'), 'shop.xn--bcher-kva.example');
  assert.equal(normaliseFlowName(''), null);
  assert.equal(normaliseFlowName('.'), null);
});

test('HTTP Host without its port', () => {
  assert.equal(hostWithoutPort('example.com:8080'), 'example.com');
  assert.equal(hostWithoutPort('example.com'), 'example.com');
  assert.equal(hostWithoutPort('[2001:db8::1]:80'), '2001:db8::1');
  assert.equal(hostWithoutPort('2001:db8::1'), '2001:db8::1');
});

test('patterns in words', () => {
  assert.equal(describePattern('example.com'), 'example.com');
  assert.equal(describePattern('.example.com'), 'example.com or a subdomain');
  assert.equal(describePattern('.example.com', true), 'example.com (or a subdomain)');
  assert.equal(describePattern('*.example.com'), 'a subdomain of example.com');
});
