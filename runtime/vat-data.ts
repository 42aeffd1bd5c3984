// Virtual and durable objects and collections: state in the vatstore, not
// the heap. This is what survives an upgrade (durable) or at least outlives
// any one delivery's heap (virtual).
//
// vatstore layout (keys are this vat's own):
//   d.meta.<name>                  durable counters and roots (baggage, kit)
//   d.kind.<kindId>                durable kind record
//   d.vo.<kindId>/<n>              state of a durable object
//   d.c.<kindId>/<n>.<key>         entry of a durable collection (key order-encoded)
//   d.cm.<kindId>/<n>              collection metadata (label, size)
//   v<inc>.…                       the same for virtual (non-durable) data of
//                                  incarnation <inc>; deleted after an upgrade
// vrefs: o+d<kindId>/<n> durable, o+v<kindId>/<n> virtual, ":<i>" suffix for a
// facet of a multi-facet object.
import { makePassableKit } from '@endo/marshal';
import { Far, passStyleOf } from '@endo/pass-style';
import type { Capdata } from './syscall.js';
import { scalarBody, startsSpecial } from './smallcaps-fast.js';
import { checkGuardKitFacets, checkInitialState, checkStateField, defendKindPrototype, type ExoKindOptions } from './exo.js';

export interface VatStore {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
  delete(key: string): void;
  getNextKey(priorKey: string): string | undefined;
}

export interface Marshaller {
  serialize(value: unknown): Capdata;
  unserialize(data: Capdata): unknown;
  /** vref of a remotable the vat already knows (export, import, virtual), without allocating. */
  knownSlot(value: unknown): string | undefined;
  /** The value for one slot, as unserialize would give it. */
  slotToVal(vref: string): unknown;
}

type Behavior = Record<string, (context: any, ...args: any[]) => unknown>;
interface KindOptions extends ExoKindOptions {
  stateVersion?: number;
  migrate?: (oldState: Record<string, unknown>, oldVersion: number) => Record<string, unknown>;
}
interface KindRecord {
  tag: string;
  durable: boolean;
  facets: string[] | null;
  definedIn: number;
  nextId: number;
}
interface KindDef {
  readonly id: number;
  readonly record: KindRecord;
  readonly init: (...args: any[]) => Record<string, unknown>;
  readonly behavior: Behavior | Record<string, Behavior>;
  readonly options: KindOptions;
}

// Built-in kinds. User kinds are numbered from FIRST_USER_KIND.
const K = { durableMap: 1, durableSet: 2, durableWeakMap: 3, kindHandle: 4, virtualMap: 5, virtualSet: 6, virtualWeakMap: 7, durableWeakSet: 8, virtualWeakSet: 9 } as const;
const FIRST_USER_KIND = 10;
const VREF = /^o\+([dv])(\d+)\/(\d+)(?::(\d+))?$/;

export class DurabilityError extends Error {}

/** A scalar's capdata as the JSON text stored in the vatstore (see smallcaps-fast.ts). */
function fastEncode(value: unknown): string | undefined {
  const body = scalarBody(value);
  return body === undefined ? undefined : `{"body":${JSON.stringify(`#${body}`)},"slots":[]}`;
}

/**
 * A write-through cache for the few small keys every operation touches (kind
 * records, counters, collection sizes): each syscall costs tens of
 * microseconds, and only this incarnation's vat-data writes these keys, so
 * the heap copy cannot go stale (an aborted crank discards heap and vatstore
 * changes together).
 */
function cacheHotKeys(store: VatStore, hot: (key: string) => boolean): VatStore {
  const cache = new Map<string, string | undefined>();
  return {
    get(key) {
      if (!hot(key)) return store.get(key);
      if (cache.has(key)) return cache.get(key);
      const value = store.get(key);
      cache.set(key, value);
      return value;
    },
    set(key, value) {
      if (hot(key)) cache.set(key, value);
      store.set(key, value);
    },
    delete(key) {
      if (hot(key)) cache.set(key, undefined);
      store.delete(key);
    },
    getNextKey: (priorKey) => store.getNextKey(priorKey),
  };
}

export function makeVatData(rawStore: VatStore, marshal: Marshaller, incarnation: number) {
  const vprefix = `v${incarnation}.`;
  const hotPrefixes = ['d.meta.', 'd.kind.', 'd.cm.', `${vprefix}kind.`, `${vprefix}cm.`];
  const store = cacheHotKeys(rawStore, (key) => hotPrefixes.some((p) => key.startsWith(p)));
  const prefixOf = (durable: boolean) => (durable ? 'd.' : vprefix);

  // ------------------------------------------------------------ identity
  // A representative stays === for as long as the program can hold it: we
  // keep only weak references, so unreferenced ones cost no heap.
  const live = new Map<string, WeakRef<object>>();
  const holders = new Map<string, WeakRef<{ state: object }>>();
  const vrefOf = new WeakMap<object, string>();
  let insertions = 0;
  const remember = (vref: string, value: object) => {
    live.set(vref, new WeakRef(value));
    vrefOf.set(value, vref);
    if (++insertions % 1024 === 0) {
      for (const [k, ref] of live) if (ref.deref() === undefined) live.delete(k);
      for (const [k, ref] of holders) if (ref.deref() === undefined) holders.delete(k);
    }
  };
  const recall = (vref: string): object | undefined => live.get(vref)?.deref();

  // ------------------------------------------------------------ kinds
  const defs = new Map<number, KindDef>();
  const kindKey = (id: number, durable: boolean) => `${prefixOf(durable)}kind.${id}`;
  const readKind = (id: number, durable: boolean): KindRecord | undefined => {
    const raw = store.get(kindKey(id, durable));
    return raw === undefined ? undefined : JSON.parse(raw);
  };
  const writeKind = (id: number, record: KindRecord) => store.set(kindKey(id, record.durable), JSON.stringify(record));
  const counter = (name: string, start: number) => {
    const key = `d.meta.${name}`;
    const n = Number(store.get(key) ?? String(start));
    store.set(key, String(n + 1));
    return n;
  };

  // ------------------------------------------------------------ durability
  const isDurableVref = (vref: string) => vref.startsWith('o+d') || vref.startsWith('o-');

  /** Where in value something non-durable sits, or undefined. */
  const findNonDurable = (value: unknown, path: string): string | undefined => {
    const style = passStyleOf(value as any);
    switch (style) {
      case 'copyArray':
        for (const [i, v] of (value as unknown[]).entries()) {
          const bad = findNonDurable(v, `${path}[${i}]`);
          if (bad) return bad;
        }
        return undefined;
      case 'copyRecord':
        for (const [k, v] of Object.entries(value as object)) {
          const bad = findNonDurable(v, `${path}.${k}`);
          if (bad) return bad;
        }
        return undefined;
      case 'tagged':
        return findNonDurable((value as any).payload, `${path}.payload`);
      case 'promise':
        return `${path} is a promise`;
      case 'remotable': {
        const vref = vrefOf.get(value as object) ?? marshal.knownSlot(value);
        if (vref !== undefined && isDurableVref(vref)) return undefined;
        return `${path} is a non-durable object (${vref?.startsWith('o+v') ? 'of a virtual kind' : 'an ordinary Far object'})`;
      }
      default:
        return undefined;
    }
  };

  const encodeValue = (value: unknown, durable: boolean, path: string): string => {
    const fast = fastEncode(value) ?? fastEncodeReference(value, durable);
    if (fast !== undefined) return fast;
    harden(value);
    if (durable) {
      const bad = findNonDurable(value, path);
      if (bad) {
        throw new DurabilityError(`cannot store a non-durable value in durable state: ${bad}; durable state can hold only data, durable objects and presences`);
      }
    }
    return JSON.stringify(marshal.serialize(value));
  };
  const decodeValue = (text: string): unknown => {
    const data = JSON.parse(text) as Capdata;
    if (data.slots.length === 0) {
      const v = JSON.parse(data.body.slice(1));
      if (typeof v !== 'object' && !(typeof v === 'string' && startsSpecial(v))) return v;
    } else if (data.slots.length === 1 && data.body.startsWith('#"$0.') && data.slots[0][0] === 'o') {
      return marshal.slotToVal(data.slots[0]);
    }
    return marshal.unserialize(data);
  };

  // A lone object reference the vat already knows, as smallcaps writes it.
  const fastEncodeReference = (value: unknown, durable: boolean): string | undefined => {
    if (typeof value !== 'object' || value === null) return undefined;
    const vref = vrefOf.get(value) ?? marshal.knownSlot(value);
    if (vref === undefined || vref[0] !== 'o' || (durable && !isDurableVref(vref))) return undefined;
    const tag = (value as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag];
    if (typeof tag !== 'string') return undefined;
    return `{"body":${JSON.stringify(`#${JSON.stringify(`$0.${tag}`)}`)},"slots":[${JSON.stringify(vref)}]}`;
  };

  // ------------------------------------------------------------ objects
  const stateKey = (durable: boolean, kindId: number, n: number) => `${prefixOf(durable)}vo.${kindId}/${n}`;

  interface StateRecord {
    v: number;
    s: Record<string, string>;
  }

  const makeStateAccessor = (def: KindDef, key: string, tag: string) => {
    let rec: StateRecord | undefined;
    const durable = def.record.durable;
    const version = def.options.stateVersion ?? 0;
    const load = (): StateRecord => {
      if (rec) return rec;
      const raw = store.get(key);
      if (raw === undefined) throw Error(`state of ${tag} object ${key} is missing (was it deleted by an upgrade?)`);
      let r = JSON.parse(raw) as StateRecord;
      if (r.v !== version) r = migrateRecord(def, key, tag, r, version);
      rec = r;
      return rec;
    };
    const state: Record<string, unknown> = {};
    const first = load();
    for (const field of Object.keys(first.s)) {
      Object.defineProperty(state, field, {
        get: () => decodeValue(load().s[field]),
        set: (value: unknown) => {
          checkStateField(def.options, tag, field, value);
          const r = load();
          const s = { ...r.s, [field]: encodeValue(value, durable, `${tag}.state.${field}`) };
          rec = { v: r.v, s };
          store.set(key, JSON.stringify(rec));
        },
        enumerable: true,
      });
    }
    // Freezing suffices: the accessors are this record's own closures.
    return Object.freeze(state);
  };

  // Lazily applied the first time an older record is read; written back in
  // the same crank. A throwing migrate fails this delivery only.
  const migrateRecord = (def: KindDef, key: string, tag: string, r: StateRecord, version: number): StateRecord => {
    const { migrate } = def.options;
    if (!migrate) {
      throw Error(`${tag} object ${key} has state version ${r.v} but the kind declares version ${version} and no migrate function`);
    }
    const old: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r.s)) old[k] = decodeValue(v);
    const next = migrate(harden(old), r.v);
    if (typeof next !== 'object' || next === null) throw Error(`migrate for ${tag} returned ${typeof next}, expected a state record`);
    const s: Record<string, string> = {};
    for (const [k, v] of Object.entries(next)) s[k] = encodeValue(v, def.record.durable, `${tag}.state.${k}`);
    const migrated = { v: version, s };
    store.set(key, JSON.stringify(migrated));
    return migrated;
  };

  // Far() costs tens of microseconds inside QuickJS, so it runs once per kind
  // (per facet): each representative is a frozen empty object inheriting
  // from that shared remotable, and methods find their context by `this`.
  // QuickJS's WeakMap is not an ephemeron table: a value that references its
  // key keeps the key alive forever. So the value is a function building the
  // context, and a single-facet context gets `self` from `this` at call time.
  const contexts = new WeakMap<object, (self: object) => unknown>();
  const protos = new Map<string, object>();
  const protoFor = (def: KindDef, facet: string | null): object => {
    const key = `${def.id}:${facet ?? ''}`;
    let proto = protos.get(key);
    if (!proto) {
      const behavior = (facet === null ? def.behavior : (def.behavior as Record<string, Behavior>)[facet]) as Behavior;
      if (!behavior) throw Error(`kind ${def.record.tag} has no behavior for facet ${facet}`);
      const defended = defendKindPrototype(def.record.tag, facet, (rep: object) => contexts.get(rep)?.(rep), behavior, def.options);
      if (defended) {
        protos.set(key, defended);
        return defended;
      }
      const methods: Record<string, unknown> = {};
      for (const [name, fn] of Object.entries(behavior)) {
        if (typeof fn !== 'function') throw Error(`kind ${def.record.tag}: behavior ${name} must be a function`);
        methods[name] = function (this: object, ...args: unknown[]) {
          const context = contexts.get(this);
          if (context === undefined) throw Error(`${name} called on something that is not a ${def.record.tag}`);
          return fn(context(this), ...args);
        };
      }
      const made: object = Far(facet === null ? def.record.tag : `${def.record.tag} ${facet}`, methods as any);
      protos.set(key, made);
      return made;
    }
    return proto;
  };
  const instanceOf = (proto: object) => Object.freeze(Object.create(proto)) as object;

  // One state accessor per object while any of its facets lives, so facets
  // never read through stale copies of each other's writes. The holder is
  // what facet contexts keep alive; it references no facet.
  const holderFor = (def: KindDef, n: number, base: string) => {
    const hit = holders.get(base)?.deref();
    if (hit) return hit;
    const holder = { state: makeStateAccessor(def, stateKey(def.record.durable, def.id, n), def.record.tag) };
    holders.set(base, new WeakRef(holder));
    return holder;
  };

  const baseVref = (def: KindDef, n: number) => `o+${def.record.durable ? 'd' : 'v'}${def.id}/${n}`;

  // Each facet is created (and collected) on its own; the facets record a
  // method sees is rebuilt per call from the live facets, so no facet holds
  // another alive.
  const facetOf = (def: KindDef, n: number, i: number): object => {
    const base = baseVref(def, n);
    const vref = `${base}:${i}`;
    const hit = recall(vref);
    if (hit) return hit;
    const names = def.record.facets!;
    if (i >= names.length) throw Error(`object ${base} has no facet ${i}`);
    const holder = holderFor(def, n, base);
    const facet = instanceOf(protoFor(def, names[i]));
    contexts.set(facet, () => Object.freeze({ state: holder.state, facets: facetsOf(def, n) }));
    remember(vref, facet);
    return facet;
  };
  const facetsOf = (def: KindDef, n: number) =>
    Object.freeze(Object.fromEntries(def.record.facets!.map((name, i) => [name, facetOf(def, n, i)])));

  const makeRepresentative = (def: KindDef, n: number): object => {
    if (def.record.facets) return facetsOf(def, n);
    const base = baseVref(def, n);
    const existing = recall(base);
    if (existing) return existing;
    const holder = holderFor(def, n, base);
    const self = instanceOf(protoFor(def, null));
    contexts.set(self, (me) => Object.freeze({ state: holder.state, self: me }));
    remember(base, self);
    return self;
  };

  const makeMaker = (def: KindDef) => {
    const maker = (...args: unknown[]) => {
      const init = def.init(...args);
      if (typeof init !== 'object' || init === null) throw Error(`init for ${def.record.tag} must return a state record`);
      checkInitialState(def.options, def.record.tag, init);
      // def.record is kept current by every maker call and redefinition.
      const record = def.record;
      const n = record.nextId;
      const updated = { ...record, nextId: n + 1 };
      writeKind(def.id, updated);
      (def as { record: KindRecord }).record = updated;
      const s: Record<string, string> = {};
      for (const [k, v] of Object.entries(init)) s[k] = encodeValue(v, def.record.durable, `${def.record.tag}.state.${k}`);
      store.set(stateKey(def.record.durable, def.id, n), JSON.stringify({ v: def.options.stateVersion ?? 0, s }));
      const made = makeRepresentative(def, n);
      if (def.options.finish) {
        // finish sees the same context a method would (Agoric's DefineKindOptions.finish).
        const rep = def.record.facets ? (made as Record<string, object>)[def.record.facets[0]] : made;
        def.options.finish(contexts.get(rep)!(rep));
      }
      return made;
    };
    return harden(maker);
  };

  const register = (id: number, record: KindRecord, init: any, behavior: any, options: KindOptions = {}) => {
    if (typeof init !== 'function') throw Error(`kind ${record.tag}: init must be a function`);
    if (options.migrate !== undefined && typeof options.migrate !== 'function') throw Error(`kind ${record.tag}: migrate must be a function`);
    const def: KindDef = { id, record, init, behavior, options };
    defs.set(id, def);
    // Guards are checked against the methods now, not at the first object.
    if (options.thisfulMethods || options.interfaceGuard || options.interfaceGuardKit) {
      if (record.facets) checkGuardKitFacets(record.tag, record.facets, options);
      for (const facet of record.facets ?? [null]) protoFor(def, facet);
    }
    return def;
  };

  // ------------------------------------------------------------ kind handles
  const handleDef = register(K.kindHandle, { tag: 'KindHandle', durable: true, facets: null, definedIn: 0, nextId: 1 }, (tag: string) => ({ tag }), {
    getTag: ({ state }: any) => state.tag,
  });
  const kindIdOfHandle = (handle: unknown): number => {
    const vref = vrefOf.get(handle as object);
    const m = vref && VREF.exec(vref);
    if (!m || Number(m[2]) !== K.kindHandle) throw Error('expected a kind handle from makeKindHandle or provideKindHandle');
    // Handle n maps to user kind FIRST_USER_KIND + n - 1.
    return FIRST_USER_KIND + Number(m[3]) - 1;
  };
  const makeKindHandle = (tag: string) => {
    if (typeof tag !== 'string' || tag === '') throw Error('a kind handle needs a non-empty tag');
    const rec = readKind(K.kindHandle, true) ?? handleDef.record;
    writeKind(K.kindHandle, rec);
    (handleDef as { record: KindRecord }).record = rec;
    return makeMaker(handleDef)(tag);
  };

  const defineDurable = (handle: unknown, init: any, behavior: any, options: KindOptions | undefined, facets: string[] | null) => {
    const id = kindIdOfHandle(handle);
    const tag = (handle as any).getTag() as string;
    const previous = readKind(id, true);
    if (previous && previous.definedIn === incarnation) throw Error(`kind "${tag}" is already defined in this incarnation`);
    if (previous && JSON.stringify(previous.facets) !== JSON.stringify(facets)) {
      throw Error(`kind "${tag}" was defined with facets ${JSON.stringify(previous.facets)}; redefined with ${JSON.stringify(facets)}`);
    }
    const record: KindRecord = { tag, durable: true, facets, definedIn: incarnation, nextId: previous?.nextId ?? 1 };
    writeKind(id, record);
    return makeMaker(register(id, record, init, behavior, options));
  };

  const defineVirtual = (tag: string, init: any, behavior: any, options: KindOptions | undefined, facets: string[] | null) => {
    const id = counter('nextVirtualKind', 1000);
    const record: KindRecord = { tag, durable: false, facets, definedIn: incarnation, nextId: 1 };
    writeKind(id, record);
    return makeMaker(register(id, record, init, behavior, options));
  };

  // ------------------------------------------------------------ collections
  const { encodePassable, decodePassable } = makePassableKit({
    encodeRemotable: (r: unknown) => {
      const vref = vrefOf.get(r as object) ?? marshal.knownSlot(r);
      if (vref === undefined) throw Error('a remotable used as a key must already be known to the vat (exported, imported or virtual)');
      return `r${vref}`;
    },
    decodeRemotable: ((encoded: string) => reanimateOrImport(encoded.slice(1))) as any,
  });

  const reanimateOrImport = (vref: string): unknown => marshal.unserialize({ body: '#"$0"', slots: [vref] });

  type CollectionKind = 'map' | 'set' | 'weakMap' | 'weakSet';
  const collectionKinds: Record<number, [CollectionKind, boolean]> = {
    [K.durableMap]: ['map', true],
    [K.durableSet]: ['set', true],
    [K.durableWeakMap]: ['weakMap', true],
    [K.virtualMap]: ['map', false],
    [K.virtualSet]: ['set', false],
    [K.virtualWeakMap]: ['weakMap', false],
    [K.durableWeakSet]: ['weakSet', true],
    [K.virtualWeakSet]: ['weakSet', false],
  };

  interface Range {
    start?: unknown;
    end?: unknown;
  }

  const makeCollection = (kindId: number, n: number): object => {
    const [type, durable] = collectionKinds[kindId];
    const vref = `o+${durable ? 'd' : 'v'}${kindId}/${n}`;
    const existing = recall(vref);
    if (existing) return existing;
    const p = prefixOf(durable);
    const entryPrefix = `${p}c.${kindId}/${n}.`;
    const metaKey = `${p}cm.${kindId}/${n}`;
    const meta = () => {
      const raw = store.get(metaKey);
      if (raw === undefined) throw Error(`collection ${vref} no longer exists (deleted by an upgrade?)`);
      return JSON.parse(raw) as { label: string; size: number };
    };
    const label = meta().label;
    const bump = (delta: number) => {
      const m = meta();
      store.set(metaKey, JSON.stringify({ ...m, size: m.size + delta }));
    };
    const keyOf = (key: unknown) => {
      const t = typeof key;
      const weak = type === 'weakMap' || type === 'weakSet';
      if (!weak && (t === 'string' || t === 'bigint' || t === 'boolean' || (t === 'number' && !Number.isNaN(key)))) {
        return entryPrefix + encodePassable(key as any);
      }
      harden(key);
      const style = passStyleOf(key as any);
      if (!['string', 'number', 'bigint', 'boolean', 'symbol', 'undefined', 'null', 'remotable'].includes(style)) {
        throw Error(`collection "${label}" keys must be scalars or remotables, got a ${style}`);
      }
      if (weak && style !== 'remotable') throw Error(`weak collection "${label}" keys must be remotables`);
      if (durable && style === 'remotable') {
        const bad = findNonDurable(key, 'key');
        if (bad) throw new DurabilityError(`durable collection "${label}": ${bad}`);
      }
      return entryPrefix + encodePassable(key as any);
    };
    const describeKey = (key: unknown) => (typeof key === 'string' ? JSON.stringify(key) : String(key));
    const has = (key: unknown) => store.get(keyOf(key)) !== undefined;
    const get = (key: unknown) => {
      const raw = store.get(keyOf(key));
      if (raw === undefined) throw Error(`key ${describeKey(key)} not found in collection "${label}"`);
      return type === 'set' || type === 'weakSet' ? key : decodeValue(raw);
    };
    const init = (key: unknown, value: unknown) => {
      const k = keyOf(key);
      if (store.get(k) !== undefined) throw Error(`key ${describeKey(key)} already registered in collection "${label}"`);
      store.set(k, type === 'set' || type === 'weakSet' ? '1' : encodeValue(value, durable, `collection "${label}" value for ${describeKey(key)}`));
      bump(1);
    };
    const set = (key: unknown, value: unknown) => {
      const k = keyOf(key);
      if (store.get(k) === undefined) throw Error(`key ${describeKey(key)} not found in collection "${label}"`);
      store.set(k, encodeValue(value, durable, `collection "${label}" value for ${describeKey(key)}`));
    };
    const del = (key: unknown) => {
      const k = keyOf(key);
      if (store.get(k) === undefined) throw Error(`key ${describeKey(key)} not found in collection "${label}"`);
      store.delete(k);
      bump(-1);
    };
    // Ordered iteration straight off the vatstore: nothing is loaded up front.
    function* iterate(range: Range = {}): Generator<[string, string]> {
      const lo = range.start === undefined ? undefined : keyOf(range.start);
      const hi = range.end === undefined ? undefined : keyOf(range.end);
      let k = lo !== undefined && store.get(lo) !== undefined ? lo : store.getNextKey(lo ?? entryPrefix);
      while (k !== undefined && k.startsWith(entryPrefix) && (hi === undefined || k < hi)) {
        const raw = store.get(k);
        if (raw !== undefined) yield [k, raw];
        k = store.getNextKey(k);
      }
    }
    const keys = function* (range?: Range) {
      for (const [k] of iterate(range)) yield decodePassable(k.slice(entryPrefix.length)) as unknown;
    };
    const values = function* (range?: Range) {
      for (const [, raw] of iterate(range)) yield decodeValue(raw);
    };
    const entries = function* (range?: Range) {
      for (const [k, raw] of iterate(range)) yield [decodePassable(k.slice(entryPrefix.length)), decodeValue(raw)];
    };
    const clear = () => {
      for (const [k] of [...iterate()]) store.delete(k);
      store.set(metaKey, JSON.stringify({ ...meta(), size: 0 }));
    };
    let methods: Record<string, unknown>;
    if (type === 'map') {
      methods = {
        has, get, init, set, delete: del, keys, values, entries, clear,
        getSize: () => meta().size,
        addAll: (pairs: Iterable<[unknown, unknown]>) => { for (const [k, v] of pairs) init(k, v); },
        getLabel: () => label,
      };
    } else if (type === 'set') {
      methods = {
        has, add: (key: unknown) => init(key, undefined), delete: del, keys, values: keys, clear,
        getSize: () => meta().size,
        addAll: (items: Iterable<unknown>) => { for (const k of items) init(k, undefined); },
        getLabel: () => label,
      };
    } else if (type === 'weakSet') {
      methods = {
        has, add: (key: unknown) => init(key, undefined), delete: del,
        addAll: (items: Iterable<unknown>) => { for (const k of items) init(k, undefined); },
        getLabel: () => label,
      };
    } else {
      methods = { has, get, init, set, delete: del, getLabel: () => label };
    }
    const collection = Far(`${durable ? 'Durable' : 'Virtual'} ${type} store "${label}"`, methods as any);
    remember(vref, collection);
    return collection;
  };

  const createCollection = (type: CollectionKind, label: string, durable: boolean) => {
    if (typeof label !== 'string') throw Error('a collection needs a string label');
    const kindId = durable
      ? ({ map: K.durableMap, set: K.durableSet, weakMap: K.durableWeakMap, weakSet: K.durableWeakSet } as const)[type]
      : ({ map: K.virtualMap, set: K.virtualSet, weakMap: K.virtualWeakMap, weakSet: K.virtualWeakSet } as const)[type];
    const n = counter(`nextCollection.${kindId}`, 1);
    store.set(`${prefixOf(durable)}cm.${kindId}/${n}`, JSON.stringify({ label, size: 0 }));
    return makeCollection(kindId, n);
  };

  // ------------------------------------------------------------ reanimation
  /** The object for a virtual or durable vref (for deliveries and unserialization). */
  const reanimate = (vref: string): object => {
    const hit = recall(vref);
    if (hit) return hit;
    const m = VREF.exec(vref);
    if (!m) throw Error(`not a virtual object reference: ${vref}`);
    const [, dv, kindText, nText, facetText] = m;
    const kindId = Number(kindText);
    const n = Number(nText);
    if (collectionKinds[kindId]) return makeCollection(kindId, n);
    const def = defs.get(kindId);
    if (!def || def.record.durable !== (dv === 'd')) {
      const rec = dv === 'd' ? readKind(kindId, true) : undefined;
      throw Error(
        rec
          ? `durable kind "${rec.tag}" has not been defined in this incarnation; object ${vref} cannot be used`
          : `object ${vref} belongs to a kind this incarnation does not have (non-durable objects do not survive an upgrade)`,
      );
    }
    if (facetText !== undefined) {
      if (!def.record.facets) throw Error(`object ${vref}: kind "${def.record.tag}" has no facets`);
      return facetOf(def, n, Number(facetText));
    }
    if (def.record.facets) throw Error(`object ${vref} names a multi-facet object without a facet`);
    return makeRepresentative(def, n);
  };

  const provideBaggage = (name: string) => {
    const key = `d.meta.${name}`;
    const existing = store.get(key);
    if (existing !== undefined) return reanimate(existing);
    const baggage = createCollection('map', name, true);
    store.set(key, vrefOf.get(baggage)!);
    return baggage;
  };

  /** Durable kinds an earlier incarnation defined that this one has not. */
  const undefinedKinds = (): { tag: string; definedIn: number }[] => {
    const out: { tag: string; definedIn: number }[] = [];
    let k = store.getNextKey('d.kind.');
    while (k !== undefined && k.startsWith('d.kind.')) {
      const rec = JSON.parse(store.get(k)!) as KindRecord;
      const id = Number(k.slice('d.kind.'.length));
      if (id >= FIRST_USER_KIND && rec.definedIn > 0 && rec.definedIn < incarnation) out.push({ tag: rec.tag, definedIn: rec.definedIn });
      k = store.getNextKey(k);
    }
    return out;
  };

  /**
   * For pre-flight checks: each durable kind this incarnation defines, the
   * shape of one stored record, and the shape its init makes (init is called
   * with no arguments; kinds whose init needs them report no shape).
   */
  const describeKinds = () => {
    const out: { tag: string; stateVersion: number; hasMigrate: boolean; recordFields?: string[]; recordVersion?: number; initFields?: string[] }[] = [];
    for (const [id, def] of defs) {
      if (id < FIRST_USER_KIND || !def.record.durable) continue;
      const entry: (typeof out)[number] = { tag: def.record.tag, stateVersion: def.options.stateVersion ?? 0, hasMigrate: typeof def.options.migrate === 'function' };
      const prefix = `d.vo.${id}/`;
      const first = store.getNextKey(prefix);
      if (first !== undefined && first.startsWith(prefix)) {
        const r = JSON.parse(store.get(first)!) as StateRecord;
        entry.recordFields = Object.keys(r.s).sort();
        entry.recordVersion = r.v;
      }
      try {
        const made = def.init();
        if (made && typeof made === 'object') entry.initFields = Object.keys(made).sort();
      } catch {
        // init needs arguments: no shape to compare
      }
      out.push(entry);
    }
    return out;
  };

  const provide = (baggage: any, key: unknown, make: (key: unknown) => unknown) => {
    if (baggage.has(key)) return baggage.get(key);
    const value = make(key);
    baggage.init(key, value);
    return value;
  };

  const canBeDurable = (value: unknown) => {
    try {
      return findNonDurable(harden(value), 'value') === undefined;
    } catch {
      return false;
    }
  };

  const api = harden({
    makeKindHandle,
    // Agoric's baggage key, so durable state written by Agoric-style code has Agoric's shape.
    provideKindHandle: (baggage: any, name: string) => provide(baggage, `${name}_kindHandle`, () => makeKindHandle(name)),
    defineKind: (tag: string, init: any, behavior: Behavior, options?: KindOptions) => defineVirtual(tag, init, behavior, options, null),
    defineKindMulti: (tag: string, init: any, facets: Record<string, Behavior>, options?: KindOptions) =>
      defineVirtual(tag, init, facets, options, Object.keys(facets).sort()),
    defineDurableKind: (handle: unknown, init: any, behavior: Behavior, options?: KindOptions) => defineDurable(handle, init, behavior, options, null),
    defineDurableKindMulti: (handle: unknown, init: any, facets: Record<string, Behavior>, options?: KindOptions) =>
      defineDurable(handle, init, facets, options, Object.keys(facets).sort()),
    provide,
    makeScalarBigMapStore: (label = 'map', opts: { durable?: boolean } = {}) => createCollection('map', label, !!opts.durable),
    makeScalarBigSetStore: (label = 'set', opts: { durable?: boolean } = {}) => createCollection('set', label, !!opts.durable),
    makeScalarBigWeakMapStore: (label = 'weakMap', opts: { durable?: boolean } = {}) => createCollection('weakMap', label, !!opts.durable),
    makeScalarBigWeakSetStore: (label = 'weakSet', opts: { durable?: boolean } = {}) => createCollection('weakSet', label, !!opts.durable),
    provideDurableMapStore: (baggage: any, name: string) => provide(baggage, name, () => createCollection('map', name, true)),
    provideDurableSetStore: (baggage: any, name: string) => provide(baggage, name, () => createCollection('set', name, true)),
    provideDurableWeakMapStore: (baggage: any, name: string) => provide(baggage, name, () => createCollection('weakMap', name, true)),
    provideDurableWeakSetStore: (baggage: any, name: string) => provide(baggage, name, () => createCollection('weakSet', name, true)),
    canBeDurable,
  });

  return {
    api,
    reanimate,
    vrefOf: (value: unknown) => (typeof value === 'object' && value !== null ? vrefOf.get(value) : undefined),
    isVirtualVref: (vref: string) => VREF.test(vref),
    provideBaggage,
    undefinedKinds,
    describeKinds,
    findNonDurable: (value: unknown, path: string) => findNonDurable(harden(value), path),
    reanimateOrImport,
  };
}

export type VatData = ReturnType<typeof makeVatData>;
