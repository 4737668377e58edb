/**
 * The policy engine of `gatehouse inspect`: rules from a YAML file, one
 * verdict per flow. evaluate() is pure; PolicySource owns the file and its
 * reloads; runPolicyCommand is `gatehouse policy`.
 */
export { evaluate, pendingRule } from './evaluate';
export { describeMatch, explainDecision, explainPolicy } from './explain';
export { loadPolicyFile, readPolicyText } from './load';
export { parsePolicy, SCHEMA_VERSION, SID_BASE, type ReadList } from './parse';
export { parseDomainList, type DomainList } from './domain-list';
export { INSPECT_POLICY_LOADER, PolicySource, WATCH_DEBOUNCE_MS, type PolicyLoader, type ReloadResult } from './source';
export { runPolicyCommand, POLICY_HELP, EXIT as POLICY_TEST_EXIT, type PolicyCommandIo } from './command';
export * from './types';
