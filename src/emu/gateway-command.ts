/**
 * `gatehouse emu gateway`: the lab's Gateway Load Balancer as a process.
 * The native gateway does the packet work; this keeps the flow list from
 * its batched events and writes a stats file (counters + flows) every
 * second for `gatehouse lab status` and the `npm start` summary.
 */
import { writeFileSync, renameSync } from 'node:fs';
import { GatehouseError } from '../errors';
import { hex64Flag, intFlag, ipv4Flag, parseFlags } from '../cli/flags';
import { eniIdToString } from '../geneve';
import { startGateway } from '../native/gateway';
import { readCounters } from '../native/counters';
import type { GatewayFlowEvent } from '../native/binding';

export const GATEWAY_HELP = `Usage: gatehouse emu gateway --tun NAME --bind ADDR --target ADDR [options]

The lab's Gateway Load Balancer: reads packets routed into TUN NAME,
encapsulates them in GENEVE exactly as GWLB does and sends them to the
appliance; what comes back is checked and written back into NAME.

  --tun NAME          TUN interface to create or attach (default gwlb0)
  --bind ADDR         our IPv4 address toward the appliance (required)
  --target ADDR       the appliance's IPv4 address (required)
  --port PORT         GENEVE port (default 6081)
  --eni HEX           endpoint ENI id, option 1 (default 00123456789abcdef)
  --attachment HEX    attachment id, option 2 (default 0000000000000a11)
  --flow-idle S       flow idle timeout in seconds (default 350)
  --stats-file FILE   write counters and flows as JSON every second
`;

export interface GatewayStats {
  eni: string;
  attachment: string;
  updated: string;
  counters: Record<string, number>;
  flows: GatewayFlowEvent[];
  expired: GatewayFlowEvent[];
}

const FLOWS_KEPT = 200;

export async function runGatewayCommand(argv: string[], write: (line: string) => void): Promise<number> {
  const { values } = parseFlags(
    argv,
    {
      tun: { type: 'string' },
      bind: { type: 'string' },
      target: { type: 'string' },
      port: { type: 'string' },
      eni: { type: 'string' },
      attachment: { type: 'string' },
      'flow-idle': { type: 'string' },
      'stats-file': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    'gatehouse emu gateway',
  );
  if (values.help) {
    write(GATEWAY_HELP);
    return 0;
  }
  const bind = ipv4Flag(values, 'bind');
  const target = ipv4Flag(values, 'target');
  if (!bind || !target) throw new GatehouseError('ERR_USAGE', 'gatehouse emu gateway: --bind ADDR and --target ADDR are required');
  const tunName = String(values.tun ?? 'gwlb0');
  const eni = hex64Flag(values, 'eni', 0x123456789abcdefn);
  const attachment = hex64Flag(values, 'attachment', 0xa11n);
  const statsFile = values['stats-file'] === undefined ? undefined : String(values['stats-file']);

  const flows = new Map<string, GatewayFlowEvent>();
  const expired: GatewayFlowEvent[] = [];
  const key = (e: GatewayFlowEvent): string => `${e.cookie}`;
  const gateway = startGateway({
    tunName,
    bind,
    target,
    port: intFlag(values, 'port', 6081, 1, 65535),
    eni,
    attachment,
    sourcePortLow: 32768,
    sourcePortHigh: 60999,
    flowIdleMs: intFlag(values, 'flow-idle', 350, 1, 6000) * 1000,
    onFlowEvents: (events) => {
      for (const e of events) {
        if (e.type === 'new') flows.set(key(e), e);
        else {
          flows.delete(key(e));
          expired.push(e);
          if (expired.length > FLOWS_KEPT) expired.shift();
        }
      }
    },
  });
  write(`gatehouse emu gateway: ${tunName} -> GENEVE ${bind} -> ${target}:6081, endpoint eni ${eniIdToString(eni)}`);

  const snapshot = (): GatewayStats => ({
    eni: eniIdToString(eni),
    attachment: eniIdToString(attachment),
    updated: new Date().toISOString(),
    counters: readCounters(gateway.counters),
    flows: [...flows.values()].slice(-FLOWS_KEPT),
    expired,
  });
  const writeStats = (): void => {
    if (!statsFile) return;
    // Write then rename, so a reader never sees half a file.
    writeFileSync(`${statsFile}.tmp`, JSON.stringify(snapshot(), null, 1));
    renameSync(`${statsFile}.tmp`, statsFile);
  };
  writeStats();
  const timer = setInterval(writeStats, 1000);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  clearInterval(timer);
  await gateway.stop();
  writeStats();
  return 0;
}
