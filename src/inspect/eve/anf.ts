/**
 * AWS Network Firewall's log wrapping: each EVE event inside
 * `{firewall_name, availability_zone, event_timestamp, event}`, so tools
 * built for Network Firewall logs (Athena tables, SIEM parsers) read ours.
 */
import type { AnfWrappedEvent, EveEvent } from './types';

export interface AnfWrapOptions {
  firewallName: string;
  availabilityZone: string;
}

/** `event_timestamp` is the time the log line is made, in whole epoch seconds, as a string (as Network Firewall writes it). */
export function wrapAnf<E extends EveEvent>(event: E, opts: AnfWrapOptions, at: Date = new Date()): AnfWrappedEvent<E> {
  return {
    firewall_name: opts.firewallName,
    availability_zone: opts.availabilityZone,
    event_timestamp: String(Math.floor(at.getTime() / 1000)),
    event,
  };
}
