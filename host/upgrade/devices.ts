// Device objects: kernel objects the host itself answers, so that a vat (a
// governance contract) can hold an instance's admin capability and pass
// bundlecaps around. Sends to them are answered inside the crank that
// delivers them; an upgrade they ask for becomes a crank of its own.
import { bundlecapInfo, type ModuleStore } from '../bundles/module-store.js';
import { grantExits, validateExitPolicy, type ExitPolicy } from '../bundles/exit-policy.js';
import { errorData, type DeviceAction, type Kernel } from '../kernel/kernel.js';
import type { Capdata, Kref } from '../kernel/refs.js';
import type { HostMarshal } from '../marshal/host-marshal.js';
import { harden } from '../marshal/endo.js';
import type { Store } from '../store/index.js';

export type DeviceInfo = { readonly type: 'admin'; readonly vat: string } | { readonly type: 'bundlecap'; readonly bundleId: string };

export interface DeviceHost {
  readonly store: Store;
  readonly kernel: Kernel;
  readonly bundles: ModuleStore;
  readonly marshal: HostMarshal;
  /** The named-exit policy an instance runs under now. */
  policyOf(vat: string): ExitPolicy;
  /** The bundle an instance runs now. */
  runningBundleOf(vat: string): string | undefined;
}

/** The presence of the device for `key`, made (and recorded) the first time. */
export function provideDevice(host: DeviceHost, key: string, info: DeviceInfo): object {
  let ko = host.store.get(`h.deviceFor.${key}`) as Kref | undefined;
  if (ko === undefined) {
    ko = host.kernel.allocateDeviceObject((k) => {
      host.store.set(`h.device.${k}`, info);
      host.store.set(`h.deviceFor.${key}`, k);
    });
  }
  return host.marshal.presence(ko);
}

/**
 * Answers one send to a device. Runs inside a crank: it only reads, or
 * returns an upgrade for the kernel to run as its own crank.
 *   admin:     upgrade(bundlecap, { exits }), setExits(exitsDelta), getInstanceId(), getIncarnation(),
 *              suspend(reason?), resume(), isSuspended()
 *   bundlecap: getBundleId()
 */
export function answerDevice(host: DeviceHost, target: Kref, method: string, args: Capdata): DeviceAction {
  const reply = (value: unknown): DeviceAction => ({ rejected: false, data: host.marshal.serialize(harden(value)) });
  const fail = (message: string): DeviceAction => ({ rejected: true, data: errorData(message) });
  const info = host.store.get(`h.device.${target}`) as DeviceInfo | undefined;
  if (!info) return fail(`kernel object ${target} is not a device of this host`);
  let decoded: unknown[];
  try {
    decoded = host.marshal.unserialize(args) as unknown[];
  } catch (err) {
    return fail(`bad arguments for ${method}: ${(err as Error).message}`);
  }
  if (info.type === 'bundlecap') {
    if (method === 'getBundleId') return reply(info.bundleId);
    return fail(`a bundlecap has no method ${JSON.stringify(method)}`);
  }
  const { vat } = info;
  const upgradeTo = (bundle: string, exitsDelta: unknown): DeviceAction => {
    const cap = host.bundles.bundlecap(bundle);
    if (!cap) return fail(`bundle ${bundle} is not installed in this host's module store`);
    try {
      // Checked exactly as an install-time policy is, before anything is kept.
      const serialize = (v: unknown) => host.marshal.serialize(harden(v));
      const policy = { ...host.policyOf(vat), ...validateExitPolicy(exitsDelta, serialize, `exits for ${vat}`) };
      const exits = grantExits(bundlecapInfo(cap).manifest.exits, policy, serialize, `the new bundle for ${vat}`);
      return { upgrade: { vat, bundleId: bundle, bundle: host.bundles.loadVatBundle(cap), exits, note: policy } };
    } catch (err) {
      return fail(`upgrade of ${vat} refused: ${(err as Error).message}`);
    }
  };
  switch (method) {
    case 'getInstanceId':
      return reply(vat);
    case 'getIncarnation':
      return reply(host.kernel.vatRecord(vat).incarnation);
    case 'upgrade': {
      const capKref = host.marshal.krefOf(decoded[0]);
      const capInfo = capKref === undefined ? undefined : (host.store.get(`h.device.${capKref}`) as DeviceInfo | undefined);
      if (!capInfo || capInfo.type !== 'bundlecap') return fail('upgrade needs a bundlecap (from host.bundlecapPresence) as its first argument');
      return upgradeTo(capInfo.bundleId, (decoded[1] as { exits?: unknown } | undefined)?.exits);
    }
    case 'setExits': {
      const current = host.runningBundleOf(vat);
      if (!current) return fail(`instance ${vat} has no recorded bundle`);
      if (typeof decoded[0] !== 'object' || decoded[0] === null) return fail('setExits needs a record of named exits');
      return upgradeTo(current, decoded[0]);
    }
    // Governance can stop a misbehaving instance and let it go again (issue #10).
    case 'suspend': {
      const why = decoded[0] === undefined ? 'suspended through its admin capability' : decoded[0];
      if (typeof why !== 'string' || why.length > 1000) return fail('suspend takes an optional reason of at most 1000 characters');
      host.kernel.suspendVat(vat, why);
      return reply(true);
    }
    case 'resume':
      host.kernel.resumeVat(vat);
      return reply(true);
    case 'isSuspended':
      return reply(host.kernel.suspensionOf(vat) !== undefined);
    default:
      return fail(`an adminFacet has no method ${JSON.stringify(method)}`);
  }
}
