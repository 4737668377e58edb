/**
 * The TypeScript GENEVE codec (RFC 8926 as AWS GWLB speaks it). It mirrors
 * the native decoder (native/src/geneve.cc) for the emulator, pcap writing
 * and tests; the packet path itself decodes in C++.
 */
export { GENEVE_REASONS, type GeneveReason } from './reasons';
export * from './types';
export { decodeGeneve, readGwlbFields } from './decode';
export { encodeGeneve, gwlbOptions, geneveHeaderLength, optionsLength } from './encode';
export { ENI_HEX_DIGITS, eniIdToString, eniIdToEndpointId, parseEniId } from './eni';
export { malformedDatagram } from './malformed';
