// How code outside any vat sees kernel references: each ko<N> becomes a
// presence (an empty Far object, one per kref, so identity is stable), each
// kp<N> a JS promise that settles when the kernel promise does.
import type { Capdata, Kref } from '../kernel/refs.js';
import { Far, harden, makeMarshal, passStyleOf } from './endo.js';
// The guest's fast paths for plain capdata (pure functions, byte-for-byte
// what marshal gives, tested against it): most host sends and answers are
// scalars or arrays of them, and marshal plus harden were ~10% of a round trip.
import { fromCapDataFast, toCapDataFast } from '../../runtime/smallcaps-fast.js';

export interface HostMarshal {
  serialize(value: unknown): Capdata;
  unserialize(data: Capdata): unknown;
  /** The kref behind a presence, or undefined. */
  krefOf(value: unknown): Kref | undefined;
  presence(kref: Kref): object;
  /** The interface name the owning vat gave the object ("Alleged: Counter"), once a message carried it. */
  interfaceOf(kref: Kref): string | undefined;
}

export function makeHostMarshal(promiseFor: (kp: Kref) => Promise<unknown>): HostMarshal {
  const presences = new Map<Kref, object>();
  const krefs = new WeakMap<object, Kref>();
  const ifaces = new Map<Kref, string>();

  const presence = (kref: Kref): object => {
    let p = presences.get(kref);
    if (!p) {
      p = Far(kref, {});
      presences.set(kref, p);
      krefs.set(p, kref);
    }
    return p;
  };

  // What convertSlotToVal below gives for an object reference; undefined
  // (the full path) for anything else.
  const knownPresence = (slot: string, iface: string | undefined) => {
    if (!slot.startsWith('ko')) return undefined;
    if (typeof iface === 'string') ifaces.set(slot, iface);
    return presence(slot);
  };

  const m = makeMarshal(
    (val: any): string => {
      const kref = krefs.get(val);
      if (kref !== undefined) return kref;
      const style = passStyleOf(val);
      throw new TypeError(
        style === 'promise'
          ? 'the host cannot send promises into vats; await them first'
          : 'the host cannot export objects into vats; only presences it received can be passed',
      );
    },
    (slot: string, iface?: string): any => {
      if (slot.startsWith('ko')) {
        if (typeof iface === 'string') ifaces.set(slot, iface);
        return presence(slot);
      }
      if (slot.startsWith('kp')) {
        const p = promiseFor(slot);
        p.catch(() => {});
        return harden(p);
      }
      throw new TypeError(`unknown kernel reference ${slot}`);
    },
    { serializeBodyFormat: 'smallcaps', errorTagging: 'off', marshalSaveError: () => {} },
  );

  return {
    serialize: (value) => toCapDataFast(value, (v) => m.toCapData(harden(v) as any) as { body: string; slots: string[] }),
    // Plain data with presences (a kit, most answers that carry objects) skips marshal too.
    unserialize: (data) => fromCapDataFast(data as { body: string; slots: string[] }, (d) => m.fromCapData(d as any), knownPresence),
    krefOf: (value) => (typeof value === 'object' && value !== null ? krefs.get(value) : undefined),
    presence,
    interfaceOf: (kref) => ifaces.get(kref),
  };
}
