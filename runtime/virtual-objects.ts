// Virtual and durable kinds: kind records, state accessors, representatives
// (single- and multi-facet), kind handles, and lazy state migration.
//
// vatstore layout: <p>kind.<kindId> kind record, <p>vo.<kindId>/<n> object
// state, where <p> is "d." (durable) or "v<incarnation>." (virtual).
import { Far } from '@endo/pass-style';
import { checkGuardKitFacets, checkInitialState, checkKindOptions, checkStateField, defendKindPrototype, giveExoReceivers, type ExoKindOptions } from './exo.js';
import { FIRST_USER_KIND, K, VREF, type VatDataContext } from './vat-data-context.js';
import { sampleIds, type KindSample, type RecordSample } from './record-sample.js';
import type { Refcounts } from './virtual-refcounts.js';

export type Behavior = Record<string, (context: any, ...args: any[]) => unknown>;
export interface KindOptions extends ExoKindOptions {
  stateVersion?: number;
  migrate?: (oldState: Record<string, unknown>, oldVersion: number) => Record<string, unknown>;
}
interface KindRecord {
  tag: string;
  durable: boolean;
  facets: string[] | null;
  definedIn: number;
  nextId: number;
  /** The highest stateVersion any incarnation declared (absent in records from before it was kept). */
  stateVersion?: number;
}
interface KindDef {
  readonly id: number;
  readonly record: KindRecord;
  readonly init: (...args: any[]) => Record<string, unknown>;
  readonly behavior: Behavior | Record<string, Behavior>;
  readonly options: KindOptions;
}

export function makeVirtualObjects(ctx: VatDataContext, refs: Refcounts) {
  const { store, prefixOf, vrefOf, holders, remember, recall, counter, encodeValue, decodeValue, incarnation } = ctx;

  // ------------------------------------------------------------ kinds
  const defs = new Map<number, KindDef>();
  const kindKey = (id: number, durable: boolean) => `${prefixOf(durable)}kind.${id}`;
  const readKind = (id: number, durable: boolean): KindRecord | undefined => {
    const raw = store.get(kindKey(id, durable));
    return raw === undefined ? undefined : JSON.parse(raw);
  };
  const writeKind = (id: number, record: KindRecord) => store.set(kindKey(id, record.durable), JSON.stringify(record));

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
          const text = encodeValue(value, durable, `${tag}.state.${field}`);
          refs.adjust(r.s[field], text, durable);
          rec = { v: r.v, s: { ...r.s, [field]: text } };
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
    if (r.v > version) {
      throw Error(`${tag} object ${key} has state version ${r.v}, above the version ${version} this kind declares (stateVersion was lowered)`);
    }
    if (!migrate) {
      throw Error(`${tag} object ${key} has state version ${r.v} but the kind declares version ${version} and no migrate function`);
    }
    const old: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r.s)) old[k] = decodeValue(v);
    const next = migrate(harden(old), r.v);
    if (typeof next !== 'object' || next === null) throw Error(`migrate for ${tag} returned ${typeof next}, expected a state record`);
    const s: Record<string, string> = {};
    for (const [k, v] of Object.entries(next)) s[k] = encodeValue(v, def.record.durable, `${tag}.state.${k}`);
    for (const text of Object.values(s)) refs.adjust(undefined, text, def.record.durable);
    for (const text of Object.values(r.s)) refs.adjust(text, undefined, def.record.durable);
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
      // A method applied to another facet or another kind's object finds no
      // context: contexts are looked up per kind and facet, by prototype, as
      // Agoric's liveslots keeps one context map per facet.
      const ownContext = (rep: object) => (isRepOf(def, facet, rep) ? contexts.get(rep)?.(rep) : undefined);
      const defended = defendKindPrototype(def.record.tag, facet, ownContext, behavior, def.options);
      if (defended) {
        protos.set(key, defended);
        return defended;
      }
      const methods: Record<string, unknown> = {};
      for (const [name, fn] of Object.entries(behavior)) {
        if (typeof fn !== 'function') throw Error(`kind ${def.record.tag}: behavior ${name} must be a function`);
        // Method syntax: a function with no `prototype` object for Far's
        // harden to freeze.
        methods[name] = {
          [name](this: object, ...args: unknown[]) {
            const context = isRepOf(def, facet, this) ? contexts.get(this) : undefined;
            if (context === undefined) throw Error(`${name} called on something that is not a ${facet === null ? def.record.tag : `${def.record.tag} ${facet} facet`}`);
            return fn(context(this), ...args);
          },
        }[name];
      }
      const made: object = Far(facet === null ? def.record.tag : `${def.record.tag} ${facet}`, methods as any);
      protos.set(key, made);
      return made;
    }
    return proto;
  };
  /** True when `rep` is a representative of this kind's `facet` (null: single-facet kind). */
  const isRepOf = (def: KindDef, facet: string | null, rep: unknown): boolean => {
    if ((typeof rep !== 'object' && typeof rep !== 'function') || rep === null) return false;
    const proto = protos.get(`${def.id}:${facet ?? ''}`);
    return proto !== undefined && Object.getPrototypeOf(rep) === proto && contexts.has(rep);
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
    states.set(base, new WeakRef(holder.state));
    return holder;
  };
  // A `state` the program kept (stashed in the heap) still reads and writes
  // the record, so it keeps the object as a facet does (break-11b #7). An
  // object whose deletion waited for its state is looked at again once that
  // state is gone.
  const states = new Map<string, WeakRef<object>>();
  const waitingForState = new Set<string>();
  /** Objects whose deletion waited for a kept state that is now gone: candidates again. */
  const takeReleasedStates = (): string[] => {
    const out: string[] = [];
    for (const base of waitingForState) {
      if (states.get(base)?.deref() !== undefined) continue;
      waitingForState.delete(base);
      out.push(base);
    }
    return out;
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
      const base = baseVref(def, n);
      refs.born(record.facets ? record.facets.map((_, i) => `${base}:${i}`) : [base]);
      const s: Record<string, string> = {};
      for (const [k, v] of Object.entries(init)) s[k] = encodeValue(v, def.record.durable, `${def.record.tag}.state.${k}`);
      for (const text of Object.values(s)) refs.adjust(undefined, text, def.record.durable);
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
    checkKindOptions(record.tag, options);
    const def: KindDef = { id, record, init, behavior, options };
    defs.set(id, def);
    giveExoReceivers(record.tag, record.facets, options, (facet, rep) => isRepOf(def, facet, rep), (rep) => (contexts.get(rep)!(rep) as { facets: object }).facets);
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
  const makeHandle = makeMaker(handleDef);
  const kindIdOfHandle = (handle: unknown): number => {
    const vref = vrefOf.get(handle as object);
    const m = vref && VREF.exec(vref);
    if (!m || Number(m[2]) !== K.kindHandle) throw Error('expected a kind handle from makeKindHandle or provideKindHandle');
    // Handle n maps to user kind FIRST_USER_KIND + n - 1.
    return FIRST_USER_KIND + Number(m[3]) - 1;
  };
  const makeKindHandle = (tag: string) => {
    if (typeof tag !== 'string' || tag === '') throw Error('a kind handle needs a non-empty tag');
    // The maker writes the record (its nextId advanced) in any case.
    (handleDef as { record: KindRecord }).record = readKind(K.kindHandle, true) ?? handleDef.record;
    return makeHandle(tag);
  };

  /**
   * The facet list of a durable kind redefined in a new incarnation (Agoric's
   * rule, liveslots facetiousness): a single-facet kind stays single-facet and
   * a multi-facet kind multi-facet; every facet it had must still be defined;
   * new facets are appended in alphabetical order, so the facet numbers in
   * existing vrefs (":<i>") keep naming the same facets. `previous` is
   * undefined the first time a handle is used.
   */
  const evolveFacets = (tag: string, previous: string[] | null | undefined, proposed: string[] | null): string[] | null => {
    if (previous === undefined) return proposed;
    if (previous === null && proposed !== null) {
      throw Error(`kind "${tag}" was defined with defineDurableKind (a single facet); it cannot be redefined with facets (${proposed.join(', ')})`);
    }
    if (previous !== null && proposed === null) {
      throw Error(`kind "${tag}" was defined with facets (${previous.join(', ')}); it cannot be redefined with defineDurableKind (a single facet)`);
    }
    if (previous === null || proposed === null) return null;
    const missing = previous.filter((f) => !proposed.includes(f));
    if (missing.length > 0) {
      throw Error(`kind "${tag}" redefined with facets (${proposed.join(', ')}) is missing ${missing.join(', ')} from its definition (${previous.join(', ')}); facets can be added, never removed`);
    }
    return [...previous, ...proposed.filter((f) => !previous.includes(f)).sort()];
  };

  const defineDurable = (handle: unknown, init: any, behavior: any, options: KindOptions | undefined, facets: string[] | null) => {
    const id = kindIdOfHandle(handle);
    const tag = (handle as any).getTag() as string;
    const previous = readKind(id, true);
    if (previous && previous.definedIn === incarnation) throw Error(`kind "${tag}" is already defined in this incarnation`);
    const stateVersion = stateVersionOf(tag, options);
    // Records already written at a higher version could never be read again (issue 13).
    if (typeof previous?.stateVersion === 'number' && stateVersion < previous.stateVersion) {
      throw Error(`kind "${tag}" lowers stateVersion from ${previous.stateVersion} to ${stateVersion}; records written at version ${previous.stateVersion} could not be read (stateVersion may only stay or grow)`);
    }
    const record: KindRecord = {
      tag,
      durable: true,
      facets: evolveFacets(tag, previous?.facets, facets),
      definedIn: incarnation,
      nextId: previous?.nextId ?? 1,
      stateVersion: Math.max(stateVersion, typeof previous?.stateVersion === 'number' ? previous.stateVersion : 0),
    };
    writeKind(id, record);
    return makeMaker(register(id, record, init, behavior, { ...options, stateVersion }));
  };

  const defineVirtual = (tag: string, init: any, behavior: any, options: KindOptions | undefined, facets: string[] | null) => {
    const stateVersion = stateVersionOf(tag, options);
    const id = counter('nextVirtualKind', 1000);
    const record: KindRecord = { tag, durable: false, facets, definedIn: incarnation, nextId: 1 };
    writeKind(id, record);
    return makeMaker(register(id, record, init, behavior, { ...options, stateVersion }));
  };

  /**
   * Deletes the state of object `base` (no facet suffix) if nothing holds it:
   * no reference in stored data, no exported facet, no live representative or
   * facet. Returns the vrefs that named it (the base, or each facet's) when
   * deleted, else undefined. Kind handles are never deleted.
   */
  const deleteIfUnreachable = (base: string): string[] | undefined => {
    const m = VREF.exec(base);
    if (!m) return undefined;
    const kindId = Number(m[2]);
    if (kindId === K.kindHandle || refs.count(base) > 0) return undefined;
    const durable = m[1] === 'd';
    const def = defs.get(kindId);
    const facets = def?.record.facets?.length ?? readKind(kindId, durable)?.facets?.length ?? 0;
    const vrefs = facets === 0 ? [base] : Array.from({ length: facets }, (_, i) => `${base}:${i}`);
    if (vrefs.some((v) => recall(v))) return undefined;
    if (states.get(base)?.deref() !== undefined) {
      waitingForState.add(base);
      return undefined;
    }
    states.delete(base);
    const key = stateKey(durable, kindId, Number(m[3]));
    const raw = store.get(key);
    if (raw === undefined) return undefined;
    store.delete(key);
    holders.delete(base);
    for (const text of Object.values((JSON.parse(raw) as StateRecord).s)) refs.adjust(text, undefined, durable);
    return vrefs;
  };

  /** The representative (or facet) for a parsed user-kind vref. */
  const reanimateObject = (vref: string, dv: string, kindId: number, n: number, facetText: string | undefined): object => {
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
   * For pre-flight checks and reviews (issue 13): each durable kind this
   * incarnation defines, its facets and methods, the fields its init makes
   * (init called with no arguments; kinds whose init needs them report none),
   * and a bounded sample of its stored records (the oldest, the newest and
   * evenly spaced ones between), each read through this incarnation's
   * definition: migrated if its version differs, every field decoded.
   * Nothing here depends on how many records there are beyond `perKind` reads.
   */
  const sampleRecords = (perKind: number): KindSample[] => {
    const out: KindSample[] = [];
    for (const [id, def] of defs) {
      if (id < FIRST_USER_KIND || !def.record.durable) continue;
      const version = def.options.stateVersion ?? 0;
      const count = def.record.nextId - 1;
      const behaviors: [string, Behavior][] = def.record.facets ? def.record.facets.map((f) => [f, (def.behavior as Record<string, Behavior>)[f] ?? {}]) : [['', def.behavior as Behavior]];
      const facets = Object.fromEntries(behaviors.map(([f, b]) => [f, Object.keys(b).sort()]));
      const entry: KindSample = { tag: def.record.tag, stateVersion: version, facets, hasMigrate: typeof def.options.migrate === 'function', records: count, samples: [] };
      try {
        const made = def.init();
        if (made && typeof made === 'object') entry.initFields = Object.keys(made).sort();
      } catch {
        // init needs arguments: the fields the new version's records will
        // have are the stateShape's keys, if it declares one; else the host
        // reports the kind as unchecked (never silently skipped, issue 13).
        entry.initNeedsArgs = true;
        const shape = (def.options as ExoKindOptions).stateShape;
        if (shape && typeof shape === 'object') entry.shapeFields = Object.keys(shape).sort();
      }
      for (const n of sampleIds(count, perKind)) {
        const key = stateKey(true, id, n);
        const raw = store.get(key);
        if (raw === undefined) continue;
        const r = JSON.parse(raw) as StateRecord;
        const sample: RecordSample = { vref: `o+d${id}/${n}`, version: r.v, fields: Object.keys(r.s).sort() };
        try {
          const now = r.v === version ? r : migrateRecord(def, key, def.record.tag, r, version);
          sample.readFields = Object.keys(now.s).sort();
          const state: Record<string, unknown> = {};
          for (const [field, text] of Object.entries(now.s)) {
            try {
              state[field] = decodeValue(text);
            } catch (err) {
              throw Error(`field ${field} cannot be decoded: ${(err as Error).message}`);
            }
          }
          // A stored value the new kind's stateShape refuses would fail the
          // first write of that field (and every guarded read of it).
          try {
            checkInitialState(def.options as ExoKindOptions, def.record.tag, state);
          } catch (err) {
            sample.failure = 'shape-mismatch';
            sample.error = (err as Error)?.message ?? String(err);
          }
        } catch (err) {
          sample.failure = r.v > version ? 'version-lowered' : r.v !== version && !entry.hasMigrate ? 'no-migrate' : r.v !== version ? 'migrate-threw' : 'unreadable';
          sample.error = (err as Error)?.message ?? String(err);
        }
        entry.samples.push(sample);
      }
      out.push(entry);
    }
    return out;
  };

  /** Builds the kind handles' shared prototype now (a zygote does, so its forks need not). */
  const prepareKindHandles = () => void protoFor(handleDef, null);

  return { prepareKindHandles, defs, deleteIfUnreachable, takeReleasedStates, makeKindHandle, defineDurable, defineVirtual, reanimateObject, undefinedKinds, sampleRecords };
}

/**
 * A kind's declared stateVersion (0 when absent), read once: it must be a
 * non-negative safe integer, because it is stored with every record and
 * compared (never lowered, issue 13); NaN, Infinity, fractions or strings
 * would make those comparisons meaningless (JSON stores NaN as null).
 * Throws naming the kind and the value.
 */
function stateVersionOf(tag: string, options: KindOptions | undefined): number {
  const v: unknown = options?.stateVersion;
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw Error(`kind "${tag}" declares stateVersion ${describeValue(v)}; it must be a non-negative integer (0, 1, 2, ...)`);
  }
  return v;
}

/** A short, printable rendering of a guest-chosen value for error messages. */
function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean' || v === null || v === undefined) return `${String(v)}${typeof v === 'bigint' ? 'n' : ''}`;
  return `(a ${typeof v})`;
}

export type VirtualObjects = ReturnType<typeof makeVirtualObjects>;
