// Entry point of the code inside every vat. Evaluated once into the base
// image; a vat (or each new incarnation of it) is then started by a startVat
// delivery naming its bundle.
import './lockdown.js';
import '@endo/eventual-send/shim.js';
import { getRemotableMethodNames } from '@endo/pass-style';
import { builtinExportNames, builtinModules } from './builtin-modules.js';
import { makeLiveSlots } from './liveslots.js';
import { loadBundle, type VatBundle } from './module-loader.js';
import { decodePlain, encodePlain } from './smallcaps-fast.js';
import { takeSyscall, type Capdata, type Resolution } from './syscall.js';
import { makeVatData, type VatData } from './vat-data.js';
import { isDurableVref } from './vat-data-context.js';
import { makeVrefAwareWeakCollections } from './vref-weak-collections.js';
import { useWeakMapForStores } from './heap-stores.js';

const syscall = takeSyscall();
const liveSlots = makeLiveSlots(syscall);

// Raw, ordered key/value storage that outlives the heap. Contract code
// normally uses the durable collections built on it; keys given here live in
// their own namespace so they cannot collide with those.
const USER_PREFIX = 'user.';
const vatstore = harden({
  get: (key: string) => syscall.vatstoreGet(USER_PREFIX + key),
  set: (key: string, value: string) => syscall.vatstoreSet(USER_PREFIX + key, value),
  delete: (key: string) => syscall.vatstoreDelete(USER_PREFIX + key),
  getNextKey: (priorKey: string) => {
    const next = syscall.vatstoreGetNextKey(USER_PREFIX + priorKey);
    return next !== undefined && next.startsWith(USER_PREFIX) ? next.slice(USER_PREFIX.length) : undefined;
  },
});
const rawStore = harden({
  get: (key: string) => syscall.vatstoreGet(key),
  set: (key: string, value: string) => syscall.vatstoreSet(key, value),
  delete: (key: string) => syscall.vatstoreDelete(key),
  getNextKey: (priorKey: string) => syscall.vatstoreGetNextKey(priorKey),
});

/** How the host fills one named exit (`host:*` import) for this vat. */
type ExitGrant =
  | { readonly kind: 'data'; readonly value: Capdata }
  | { readonly kind: 'module'; readonly source: string }
  | { readonly kind: 'power'; readonly name: 'console' };

interface StartOptions {
  /** Named exits the host grants, by specifier. */
  readonly exits?: Readonly<Record<string, ExitGrant>>;
  /** 1 for a new vat; N for the Nth incarnation after upgrades. */
  readonly incarnation: number;
  /** 'root' (buildRootObject vat), 'zygote' (installation init), 'upgrade' (a contract's new incarnation). */
  readonly role: 'root' | 'zygote' | 'upgrade';
  readonly vatParameters?: Capdata;
  readonly privateArgs?: Capdata;
  /** After an upgrade: the imports (o-N) the vat's c-list still holds, for the GC to release those this incarnation no longer reaches. */
  readonly imports?: readonly string[];
}

let vatData: VatData | null = null;
// Set by a zygote's installation init; every instance forked from the zygote
// image finds it here.
let instanceFunction: ((...args: unknown[]) => unknown) | null = null;

// A console that can only write strings to the host's diagnostic log: the
// attenuated form of a powerful built-in.
const attenuatedConsole = harden({
  log: (...args: unknown[]) => syscall.log('log', args.map(String).join(' ')),
  warn: (...args: unknown[]) => syscall.log('warn', args.map(String).join(' ')),
  error: (...args: unknown[]) => syscall.log('error', args.map(String).join(' ')),
});

function exitNamespace(specifier: string, grant: ExitGrant, builtins: Record<string, unknown>): unknown {
  switch (grant.kind) {
    case 'data': {
      const value = liveSlots.unserialize(grant.value);
      // A record's fields are the named exports (and the default export is
      // the record); anything else is the default export.
      return typeof value === 'object' && value !== null && !Array.isArray(value)
        ? harden({ ...value })
        : harden({ __esModule: true, default: value });
    }
    case 'module':
      // Powerless code the host supplies: its own compartment, no endowments.
      return harden(loadBundle({ entry: specifier, modules: { [specifier]: { source: grant.source, imports: {} } } }, builtins, {}));
    case 'power':
      if (grant.name === 'console') return harden({ __esModule: true, default: attenuatedConsole, ...attenuatedConsole });
      throw Error(`unknown power ${JSON.stringify(grant.name)} for named exit ${specifier}`);
    default:
      throw Error(`malformed grant for named exit ${specifier}`);
  }
}

function loadContract(bundle: VatBundle, incarnation: number, exits: Readonly<Record<string, ExitGrant>> = {}) {
  vatData = makeVatData(rawStore, liveSlots, incarnation);
  liveSlots.setVirtualHooks(vatData);
  // Contract code's WeakMap/WeakSet know virtual objects and imports by vref
  // (issue #11), and so do the heap weak stores (issue 12).
  const importVrefOf = (key: unknown) => {
    const vref = liveSlots.knownSlot(key);
    return vref?.startsWith('o-') ? vref : undefined;
  };
  const weak = makeVrefAwareWeakCollections((key) => vatData!.vrefOf(key) ?? importVrefOf(key), (vref) => liveSlots.slotReleased(vref));
  vatData.setHeapWeakKeys(weak);
  useWeakMapForStores(weak.WeakMap);
  const base = builtinModules(vatData);
  const builtins: Record<string, unknown> = { ...base };
  for (const [specifier, grant] of Object.entries(exits)) {
    if (!specifier.startsWith('host:')) throw Error(`named exits start with "host:", got ${JSON.stringify(specifier)}`);
    builtins[specifier] = exitNamespace(specifier, grant, base);
  }
  // `assert` is SES's, the global Agoric vats have (issue 12).
  return loadBundle(bundle, harden(builtins), { HandledPromise, assert, WeakMap: weak.WeakMap, WeakSet: weak.WeakSet });
}

function assertKindsRedefined(vd: VatData) {
  const missing = vd.undefinedKinds();
  if (missing.length > 0) {
    const list = missing.map((k) => `kind "${k.tag}" (defined by incarnation ${k.definedIn}) was not redefined`);
    throw Error(list.join('; '));
  }
}

async function startVat(bundle: VatBundle, options: StartOptions): Promise<Capdata | undefined> {
  liveSlots.startIncarnation(options.imports);
  const ns = loadContract(bundle, options.incarnation, options.exits);
  const vd = vatData!;
  if (typeof ns.buildRootObject === 'function') {
    // Installing an Agoric-style vat: nothing runs at installation level;
    // each instance is started cold with buildRootObject.
    if (options.role === 'zygote') return liveSlots.serialize('buildRootObject');
    const params = options.vatParameters ? unserializeData(options.vatParameters) : undefined;
    const root = await ns.buildRootObject(harden({ vatstore }), params, vd.provideBaggage('baggage'));
    liveSlots.setRoot(root);
    assertKindsRedefined(vd);
    vd.reviveWatchedPromises();
    return undefined;
  }
  if (typeof ns.defineInstallationKinds !== 'function') throw Error('vat bundle exports neither buildRootObject nor defineInstallationKinds');
  const installationBaggage = vd.provideBaggage('installationBaggage');
  const instanceFn = await ns.defineInstallationKinds(installationBaggage, harden({ incarnation: options.incarnation }));
  if (typeof instanceFn !== 'function') throw Error('defineInstallationKinds must return the instance function');
  if (options.role === 'zygote') {
    instanceFunction = instanceFn;
    // Done once here, in the image each fork starts from (~160k meter
    // units less per fork, issue 16). A fork's vatstore is a copy of the
    // zygote's, so the instanceBaggage collection is its own.
    vd.prepareInstances();
    return undefined;
  }
  // Upgrade: the instance function runs again with the same baggage; the kit
  // it made at the first start is kept, so its maker is not called.
  const privateArgs = options.privateArgs ? unserializeData(options.privateArgs) : undefined;
  await instanceFn(vd.provideBaggage('instanceBaggage'), harden(instanceContext()), privateArgs);
  assertKindsRedefined(vd);
  vd.reviveWatchedPromises();
  return undefined;
}

/**
 * Capdata from the host (context, privateArgs, vatParameters), decoded: plain
 * data without the full marshal (~80k meter units less per fork, issue 16),
 * anything with references or special values through liveslots.
 */
function unserializeData(data: Capdata): unknown {
  const plain = decodePlain(data);
  return plain ? plain.value : liveSlots.unserialize(data);
}

function instanceContext() {
  const raw = rawStore.get('d.meta.context');
  return raw === undefined ? {} : unserializeData(JSON.parse(raw));
}

/** Why `kit` cannot be an instance's kit, or undefined. */
function kitProblem(kit: unknown): string | undefined {
  if (typeof kit !== 'object' || kit === null) return 'the kit maker must return a record of facets';
  const bad = vatData!.findNonDurable(kit, 'kit');
  return bad && `${bad}; every facet of the kit must be a durable object (defineDurableKind) so it survives upgrades`;
}

async function startInstance(context: Capdata, privateArgs: Capdata): Promise<Capdata> {
  if (!instanceFunction || !vatData) throw Error('startInstance needs a vat forked from an installation zygote');
  rawStore.set('d.meta.context', JSON.stringify(context));
  // Every incarnation reads the context again: the imports it names stay imported.
  for (const slot of context.slots) if (slot.startsWith('o-')) liveSlots.refSlot(slot, 1, true);
  // The context as instanceContext() would read it back.
  const maker = await instanceFunction(vatData.provideBaggage('instanceBaggage'), harden(unserializeData(context)), unserializeData(privateArgs));
  if (typeof maker !== 'function') throw Error('the instance function must return a kit maker');
  const kit = harden(await maker());
  if (typeof kit !== 'object' || kit === null) throw Error(kitProblem(kit));
  // A kit is durable exactly when every reference in it is (a durable object
  // or an import): its capdata says so without findNonDurable's walk, which
  // runs only to name the culprit. Exporting a bad kit's facets first does no
  // harm: the failed start aborts the crank.
  let data: Capdata;
  try {
    data = liveSlots.toKernel(kit);
  } catch (err) {
    throw Error(kitProblem(kit) ?? (err as Error).message);
  }
  if (!data.slots.every(isDurableVref)) throw Error(kitProblem(kit) ?? `the kit holds a non-durable reference`);
  rawStore.set('d.meta.kit', JSON.stringify(data));
  instanceFunction = null;
  return data;
}

/**
 * For pre-flight checks: method names of some exported objects, and each
 * durable kind this incarnation defines, with (when `samplePerKind` > 0) a
 * sample of its stored records read through this incarnation. Writes (migrations) go to the trial's overlay.
 */
function inspect(vrefs: string[], samplePerKind = 0): Capdata {
  const methods: Record<string, string[]> = {};
  for (const vref of vrefs) {
    try {
      const obj = liveSlots.slotToVal(vref);
      methods[vref] = [...getRemotableMethodNames(obj as any)].filter((m): m is string => typeof m === 'string').sort();
    } catch (err) {
      methods[vref] = [];
    }
  }
  const report = { methods, kinds: vatData ? vatData.sampleRecords(samplePerKind) : [] };
  // The report is plain data the runtime made: the full marshal would cost
  // milliseconds here (harden and pass-style checks on every node).
  return encodePlain(report) ?? liveSlots.serialize(harden(report));
}

type Delivery =
  | ['startVat', VatBundle, StartOptions]
  | ['startInstance', Capdata, Capdata]
  | ['deliver', string, string, Capdata, string | null]
  | ['notify', Resolution[]]
  | ['inspect', string[], number?]
  | ['bringOutYourDead', string?]
  | ['dropExports', string[]];

// The host calls this with one JSON delivery and reads the reply after every
// promise job has run: {"ok":true} (with "result" for a started instance,
// "noMethod" for a message to an object without that method), or
// {"error":"..."} for a delivery that failed as a whole. A method that throws
// is not such a failure: its result promise is rejected instead.
const OK = '{"ok":true}';
// A message to an object without that method (its result is rejected).
const NO_METHOD = '{"ok":true,"noMethod":true}';
const reply = (result: Capdata | undefined) => (result === undefined ? OK : JSON.stringify({ ok: true, result }));
const failed = (err: unknown) => JSON.stringify({ error: `${(err as Error)?.message ?? String(err)}` || 'delivery failed' });
const batched = (result: Capdata | undefined) => {
  syscall.endBatch(true);
  return reply(result);
};
const failedBatch = (err: unknown) => {
  syscall.endBatch(false);
  return failed(err);
};

// Deliveries that need no await answer synchronously (an async function costs
// ~800 meter units per call inside QuickJS); the host runs every promise job
// before it reads the reply either way.
const dispatch = (request: string): string | Promise<string> => {
  const d = JSON.parse(request) as Delivery;
  syscall.newDelivery();
  try {
    switch (d[0]) {
      // Start-ups hold their vatstore writes and send them in one syscall
      // when they end (a failed start is rolled back: nothing to send).
      case 'startVat':
        syscall.startBatch();
        return startVat(d[1], d[2]).then(batched, failedBatch);
      case 'startInstance':
        syscall.startBatch();
        return startInstance(d[1], d[2]).then(batched, failedBatch);
      case 'deliver':
        return liveSlots.deliver(d[1], d[2], d[3], d[4]) ? OK : NO_METHOD;
      case 'notify':
        liveSlots.notify(d[1]);
        return OK;
      case 'inspect':
        return reply(inspect(d[1], d[2]));
      case 'bringOutYourDead':
        return reply(liveSlots.serialize(harden(liveSlots.bringOutYourDead())));
      case 'dropExports':
        liveSlots.dropExports(d[1]);
        return OK;
      default:
        throw Error(`unknown delivery type ${JSON.stringify((d as unknown[])[0])}`);
    }
  } catch (err) {
    return failed(err);
  }
};

// Read by the host's build (never by a vat): what each built-in module exports.
Object.defineProperty(globalThis, '__quickvat_builtin_exports', {
  value: () => JSON.stringify(builtinExportNames()),
  enumerable: false,
  configurable: false,
  writable: false,
});
Object.defineProperty(globalThis, '__quickvat_dispatch', { value: dispatch, enumerable: false, configurable: false, writable: false });
