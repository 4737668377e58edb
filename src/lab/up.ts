/**
 * `lab up`: builds the topology, starts the internet host's services, the
 * appliance and the gateway, then routes app and internet traffic through
 * the gateway's TUN. Any failing step tears down everything already made and
 * reports the step, the command and its stderr.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { GatehouseError } from '../errors';
import { labDown } from './down';
import { startInternetHost } from './internet-host';
import { linkExists, listNamespaces, listeningPorts } from './netns';
import {
  DEFAULT_LAB_NAME,
  GATEWAY_TUN,
  GENEVE_PORT,
  LAB_ADDRESSES,
  LAB_HOSTS,
  LAB_STATE_ROOT,
  labPlan,
  validateLabName,
  type LabHost,
  type LabPlan,
} from './plan';
import { assertNetAdmin, assertToolsPresent } from './preflight';
import { applianceArgv, gatewayArgv, gatewayStatsFile, validateApplianceCommand } from './programs';
import { STATE_SCHEMA_VERSION, writeState, type LabState } from './state';
import { assertRunning, detach, startInNamespace, waitForReady, type StartedProcess } from './supervisor';
import { addTunPolicyRoutes, createTopology, writeResolvConfs, type LabLog } from './topology';

export interface LabUpOptions {
  /** Lab name, [a-z0-9]{1,8}; namespaces are gh-<name>-<host>. Default "lab". */
  name?: string;
  /** Give the appliance its own link to the internet host (NAT appliances). */
  twoArm?: boolean;
  /** A command line run with /bin/sh -c in the appliance namespace instead of the echo reflector. */
  appliance?: string;
  /** Progress lines, one per step. */
  log?: (line: string) => void;
}

export interface LabInfo {
  name: string;
  twoArm: boolean;
  stateDir: string;
  namespaces: Record<LabHost, string>;
  addresses: typeof LAB_ADDRESSES;
  eni: string;
  attachment: string;
  pids: Record<string, number>;
  logs: Record<string, string>;
  gatewayStatsFile: string;
}

export async function labUp(opts: LabUpOptions = {}): Promise<LabInfo> {
  const name = validateLabName(opts.name ?? DEFAULT_LAB_NAME);
  const appliance = validateApplianceCommand(opts.appliance);
  const log: LabLog = opts.log ?? (() => undefined);
  assertNetAdmin('gatehouse lab up');
  await assertToolsPresent();
  const plan = labPlan(name, { twoArm: opts.twoArm ?? false });
  await claimLab(plan);

  const build = new LabBuild(plan, appliance, log);
  try {
    await build.run();
  } catch (err) {
    log(`lab up failed while ${build.step}; removing everything it created`);
    const cleanup = await labDown(name).then(
      () => '',
      (downErr: unknown) => ` (cleanup also failed: ${(downErr as Error).message}; run gatehouse lab down --name ${name})`,
    );
    const reason = err instanceof Error ? err.message : String(err);
    throw new GatehouseError(
      'ERR_LAB',
      `lab up failed while ${build.step}: ${reason}\nEverything it created was removed${cleanup}.`,
      { cause: err },
    );
  }
  return build.info();
}

/**
 * The state directory doubles as the lab's lock: mkdir without `recursive`
 * fails if it exists, so two `lab up --name X` cannot both proceed.
 */
async function claimLab(plan: LabPlan): Promise<void> {
  const ours = new Set(LAB_HOSTS.map((host) => plan.namespaces[host]));
  const present = (await listNamespaces()).filter((ns) => ours.has(ns));
  const exists = (): GatehouseError =>
    new GatehouseError(
      'ERR_LAB_EXISTS',
      `A lab named "${plan.name}" already exists${present.length > 0 ? ` (${present.join(', ')})` : ` (${plan.stateDir})`}; remove it with: gatehouse lab down --name ${plan.name}`,
    );
  if (present.length > 0) throw exists();
  mkdirSync(LAB_STATE_ROOT, { recursive: true });
  try {
    mkdirSync(plan.stateDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw exists();
    throw new GatehouseError('ERR_LAB', `Could not create ${plan.stateDir}: ${(err as Error).message}`, { cause: err });
  }
}

/** One lab up in progress: what has been made so far, written to state.json after each step. */
class LabBuild {
  step = 'starting';
  private readonly started: StartedProcess[] = [];
  private readonly state: LabState;

  constructor(
    private readonly plan: LabPlan,
    appliance: string | undefined,
    private readonly log: LabLog,
  ) {
    this.state = {
      version: STATE_SCHEMA_VERSION,
      name: plan.name,
      created: new Date().toISOString(),
      twoArm: plan.twoArm,
      appliance: appliance ?? null,
      stateDir: plan.stateDir,
      namespaces: plan.namespaces,
      eni: plan.eni,
      attachment: plan.attachment,
      processes: [],
      externalPaths: [],
      gatewayStatsFile: gatewayStatsFile(plan.stateDir),
      complete: false,
    };
  }

  async run(): Promise<void> {
    const { plan } = this;
    this.step = 'writing the state file';
    writeState(this.state);

    this.step = 'creating the topology';
    await createTopology(plan, this.log);

    this.step = 'writing resolv.conf files';
    writeResolvConfs(plan, (dir) => this.state.externalPaths.push(dir));
    writeState(this.state);

    this.step = 'starting the internet host (nginx, dnsmasq)';
    await startInternetHost(plan, (role, host, argv) => this.start(role, host, argv), this.log);

    // The appliance first: GWLB only sends to a target that is there.
    this.step = 'starting the appliance';
    const applianceProc = this.start('appliance', 'appliance', applianceArgv(this.state.appliance ?? undefined));
    const applianceListening = await waitForReady(
      applianceProc,
      `listening on UDP ${GENEVE_PORT}`,
      async () => (await listeningPorts(plan.namespaces.appliance, 'udp')).has(GENEVE_PORT),
      // A user's command may legitimately take longer (or bind later): warn, don't fail.
      { tolerateTimeout: this.state.appliance !== null },
    );
    if (!applianceListening) {
      this.log(`warning: the appliance is not listening on UDP ${GENEVE_PORT} yet; GENEVE packets will be refused until it does`);
    }

    this.step = 'starting the gateway';
    const gateway = this.start('gateway', 'gwlb', gatewayArgv(plan));
    await waitForReady(gateway, `creating ${GATEWAY_TUN}`, () => linkExists(plan.namespaces.gwlb, GATEWAY_TUN));

    this.step = `routing app and internet traffic through ${GATEWAY_TUN}`;
    this.log(`policy routing: traffic from app and internet goes through ${GATEWAY_TUN}`);
    await addTunPolicyRoutes(plan);

    this.step = 'checking that every process is still running';
    for (const proc of this.started) assertRunning(proc);
    this.state.complete = true;
    writeState(this.state);
    for (const proc of this.started) detach(proc);
    this.log(`lab "${plan.name}" is up (state in ${plan.stateDir})`);
  }

  info(): LabInfo {
    const pids: Record<string, number> = {};
    const logs: Record<string, string> = {};
    for (const p of this.state.processes) {
      pids[p.role] = p.pid;
      logs[p.role] = p.log;
    }
    return {
      name: this.plan.name,
      twoArm: this.plan.twoArm,
      stateDir: this.plan.stateDir,
      namespaces: this.plan.namespaces,
      addresses: LAB_ADDRESSES,
      eni: this.plan.eni,
      attachment: this.plan.attachment,
      pids,
      logs,
      gatewayStatsFile: this.state.gatewayStatsFile,
    };
  }

  private start(role: string, host: LabHost, argv: string[]): StartedProcess {
    const ns = this.plan.namespaces[host];
    this.log(`starting ${role} in ${ns}`);
    const proc = startInNamespace(role, ns, argv, join(this.plan.stateDir, `${role}.log`));
    this.started.push(proc);
    this.state.processes.push(proc.record);
    writeState(this.state);
    return proc;
  }
}
