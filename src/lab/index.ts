/**
 * gatehouse lab: a local AWS-like network in Linux network namespaces (app
 * host, emulated GWLB + endpoint, appliance, internet host) to try a GWLB
 * appliance and its hook scripts without an AWS account.
 */
export { labUp, type LabInfo, type LabUpOptions } from './up';
export { READY_TIMEOUT_MS } from './supervisor';
export { labDown, labDownAll, findLabNames, type LabDownResult } from './down';
export { labStatus, type LabStatus, type HostStatus, type ProcessStatus } from './status';
export { labExecCapture, labExecInherit, validateLabHost } from './exec';
export type { CommandResult } from './run';
export {
  APPLIANCE_GENEVE_INTERFACE,
  DEFAULT_LAB_NAME,
  GATEWAY_TUN,
  GENEVE_LINK_MTU,
  GENEVE_PORT,
  LAB_ADDRESSES,
  LAB_HOSTS,
  LAB_SITE_NAMES,
  LAB_STATE_ROOT,
  TUN_ROUTE_TABLE,
  labPlan,
  namespaceName,
  stableLabId,
  stateDirFor,
  validateLabName,
  vethName,
  type LabHost,
  type LabPlan,
} from './plan';
export { siteBody } from './nginx';
export { hasNetAdmin } from './preflight';
