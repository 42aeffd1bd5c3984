// Exos over quickvat's virtual and durable kinds: interface guards enforced on
// every call (arguments and result), `stateShape` checked on every state
// write, and Agoric's `@agoric/vat-data` exo helpers (prepareExoClass and
// friends) with Agoric's baggage keys. The guarding itself is @endo/exo's
// defendPrototype, so violations read exactly as they do in Agoric vats.
//
// Semantics and names follow Agoric's packages/vat-data/src/exo-utils.js and
// liveslots' DefineKindOptions (thisfulMethods, interfaceGuard(Kit),
// stateShape, finish).
import { initEmpty } from '@endo/exo';
import { defendPrototype } from '@endo/exo/tools.js';
import { M, makeCopyMap, makeCopySet, matches, mustMatch } from '@endo/patterns';
import { passStyleOf } from '@endo/pass-style';
import { Fail, q } from '@endo/errors';

/** The DefineKindOptions fields this module implements (issue 12). */
export interface ExoKindOptions {
  /** Methods see their context as `this` ({ state, self } or { state, facets }) instead of a first argument. */
  thisfulMethods?: boolean;
  /** Guard for a single-facet kind: every method call's arguments and result are checked. */
  interfaceGuard?: unknown;
  /** Guards by facet name, for a multi-facet kind. */
  interfaceGuardKit?: Record<string, unknown>;
  /** Record of patterns: the initial state must match it, and each write must match its field's pattern. */
  stateShape?: Record<string, unknown>;
  /** Called once with the new object's context, right after it is made. */
  finish?: (context: any) => void;
  /** Kits only: called at definition with amplify(facet) -> that object's facets record (Endo). */
  receiveAmplifier?: (amplify: (facet: unknown) => object) => void;
  /** Called at definition with isInstance(exo, facetName?) -> boolean (Endo). */
  receiveInstanceTester?: (isInstance: (exo: unknown, facetName?: string) => boolean) => void;
}

/** Every DefineKindOptions field a kind accepts (liveslots' and Endo's names, plus stateVersion/migrate). */
const KIND_OPTIONS = ['thisfulMethods', 'interfaceGuard', 'interfaceGuardKit', 'stateShape', 'finish', 'receiveAmplifier', 'receiveInstanceTester', 'stateVersion', 'migrate'];

/**
 * Refuses options a kind would otherwise silently ignore (a misspelt
 * `stateshape` would leave state unchecked), and a stateShape that is not a
 * record of patterns (Agoric: stateShape is a CopyRecord of patterns).
 */
export function checkKindOptions(tag: string, options: object): void {
  if (typeof options !== 'object' || options === null) throw Error(`kind "${tag}": options must be a record, got ${options === null ? 'null' : typeof options}`);
  for (const name of Reflect.ownKeys(options)) {
    if (typeof name !== 'string' || !KIND_OPTIONS.includes(name)) {
      throw Error(`kind "${tag}": unknown option ${JSON.stringify(String(name))} (known: ${KIND_OPTIONS.join(', ')})`);
    }
  }
  const { stateShape, receiveAmplifier, receiveInstanceTester } = options as ExoKindOptions;
  for (const [name, fn] of [['receiveAmplifier', receiveAmplifier], ['receiveInstanceTester', receiveInstanceTester]] as const) {
    if (fn !== undefined && typeof fn !== 'function') throw Error(`kind "${tag}": option ${name} must be a function`);
  }
  if (stateShape === undefined) return;
  let style: string;
  try {
    style = passStyleOf(harden(stateShape) as any);
  } catch (e) {
    throw Error(`kind "${tag}": stateShape must be a record of patterns: ${(e as Error).message}`);
  }
  if (style !== 'copyRecord') throw Error(`kind "${tag}": stateShape must be a record of patterns, got ${style === 'tagged' ? 'a pattern that is not a record' : `a ${style}`}`);
  for (const [field, patt] of Object.entries(stateShape)) {
    if (!matches(patt as any, M.pattern())) throw Error(`kind "${tag}": stateShape.${field} is not a pattern`);
  }
}

type Methods = Record<PropertyKey, (...args: any[]) => unknown>;

/**
 * The prototype for one facet of a kind whose options ask for exo behaviour
 * (thisful methods or guards), or undefined when plain kind methods will do.
 * `contextOf` maps a representative to its context (undefined for anything
 * that is not one, which the guard reports as an invalid `this`).
 * Throws (Endo's messages) if a guard names methods the behavior lacks, or
 * leaves methods unguarded.
 */
export function defendKindPrototype(
  tag: string,
  facet: string | null,
  contextOf: (rep: object) => unknown,
  behavior: Methods,
  options: ExoKindOptions,
): object | undefined {
  const { thisfulMethods = false, interfaceGuard, interfaceGuardKit } = options;
  if (!thisfulMethods && interfaceGuard === undefined && interfaceGuardKit === undefined) return undefined;
  let guard: unknown;
  if (facet === null) {
    interfaceGuardKit === undefined || Fail`${q(tag)} has one facet: use interfaceGuard, not interfaceGuardKit`;
    guard = interfaceGuard;
  } else {
    interfaceGuard === undefined || Fail`${q(tag)} has facets: use interfaceGuardKit, not interfaceGuard`;
    if (interfaceGuardKit !== undefined) {
      Object.prototype.hasOwnProperty.call(interfaceGuardKit, facet) || Fail`Facets ${q([facet])} of ${q(tag)} not guarded by interfaces`;
      guard = interfaceGuardKit[facet];
    }
  }
  const label = facet === null ? tag : `${tag} ${facet}`;
  return defendPrototype(label, contextOf as any, behavior as any, thisfulMethods, guard as any);
}

/** Facet names an interfaceGuardKit guards that the kind does not have (Endo's message). */
export function checkGuardKitFacets(tag: string, facets: readonly string[], options: ExoKindOptions): void {
  const kit = options.interfaceGuardKit;
  if (kit === undefined) return;
  const extra = Object.keys(kit).filter((name) => !facets.includes(name));
  extra.length === 0 || Fail`Interfaces ${q(extra)} not implemented by ${q(tag)}`;
}

/** Refuses an initial state that does not match the kind's stateShape. */
export function checkInitialState(options: ExoKindOptions, tag: string, state: object): void {
  if (options.stateShape === undefined) return;
  mustMatch(harden({ ...state }), harden(options.stateShape) as any, `${tag} initial state`);
}

/** Refuses a state write that does not match its field's pattern in stateShape. */
export function checkStateField(options: ExoKindOptions, tag: string, field: string, value: unknown): void {
  const shape = options.stateShape;
  if (shape === undefined) return;
  mustMatch(harden(value) as any, harden(shape)[field] as any, `${tag} state.${field}`);
}

/** The part of vat-data's API the exo helpers are built from. */
export interface KindApi {
  provideKindHandle(baggage: unknown, kindName: string): unknown;
  provide(baggage: unknown, key: unknown, make: (key: unknown) => unknown): any;
  defineKind(tag: string, init: any, behavior: any, options?: any): any;
  defineKindMulti(tag: string, init: any, facets: any, options?: any): any;
  defineDurableKind(handle: unknown, init: any, behavior: any, options?: any): any;
  defineDurableKindMulti(handle: unknown, init: any, facets: any, options?: any): any;
}

/**
 * Agoric's exo helpers over one vat's kinds (names and baggage keys as in
 * @agoric/vat-data): kind handles live under `${kindName}_kindHandle`, a
 * prepareExo singleton under `${kindName}_singleton`.
 */
export function makeExoUtils(vd: KindApi) {
  const exo = (options: object | undefined, extra: object) => ({ ...options, thisfulMethods: true, ...extra });
  const { provideKindHandle } = vd;
  const defineVirtualExoClass = (tag: string, interfaceGuard: unknown, init: any, methods: Methods, options?: object) =>
    vd.defineKind(tag, init, methods, exo(options, { interfaceGuard }));
  const defineVirtualExoClassKit = (tag: string, interfaceGuardKit: unknown, init: any, facets: Record<string, Methods>, options?: object) =>
    vd.defineKindMulti(tag, init, facets, exo(options, { interfaceGuardKit }));
  const defineDurableExoClass = (handle: unknown, interfaceGuard: unknown, init: any, methods: Methods, options?: object) =>
    vd.defineDurableKind(handle, init, methods, exo(options, { interfaceGuard }));
  const defineDurableExoClassKit = (handle: unknown, interfaceGuardKit: unknown, init: any, facets: Record<string, Methods>, options?: object) =>
    vd.defineDurableKindMulti(handle, init, facets, exo(options, { interfaceGuardKit }));
  const prepareExoClass = (baggage: unknown, kindName: string, interfaceGuard: unknown, init: any, methods: Methods, options?: object) =>
    defineDurableExoClass(provideKindHandle(baggage, kindName), interfaceGuard, init, methods, options);
  const prepareExoClassKit = (baggage: unknown, kindName: string, interfaceGuardKit: unknown, init: any, facets: Record<string, Methods>, options?: object) =>
    defineDurableExoClassKit(provideKindHandle(baggage, kindName), interfaceGuardKit, init, facets, options);
  const prepareExo = (baggage: unknown, kindName: string, interfaceGuard: unknown, methods: Methods, options?: object) => {
    const makeSingleton = prepareExoClass(baggage, kindName, interfaceGuard, initEmpty, methods, options);
    return vd.provide(baggage, `${kindName}_singleton`, () => makeSingleton());
  };
  return harden({
    defineVirtualExoClass,
    defineVirtualExoClassKit,
    defineDurableExoClass,
    defineDurableExoClassKit,
    prepareExoClass,
    prepareExoClassKit,
    prepareExo,
    prepareSingleton: (baggage: unknown, kindName: string, methods: Methods, options?: object) => prepareExo(baggage, kindName, undefined, methods, options),
    provideKindHandle,
    prepareKind: (baggage: unknown, kindName: string, init: any, behavior: Methods, options?: object) =>
      vd.defineDurableKind(provideKindHandle(baggage, kindName), init, behavior, options),
    prepareKindMulti: (baggage: unknown, kindName: string, init: any, facets: Record<string, Methods>, options?: object) =>
      vd.defineDurableKindMulti(provideKindHandle(baggage, kindName), init, facets, options),
    ignoreContext:
      (fn: (...args: any[]) => unknown) =>
      (_context: unknown, ...args: unknown[]) =>
        fn(...args),
  });
}

/**
 * Endo's receiveAmplifier / receiveInstanceTester (packages/exo/src/exo-makers.js)
 * over a kind's representatives, given again at each (re)definition.
 * `isRepOf(facet, rep)`: rep is this kind's `facet` (null: single-facet kind);
 * `facetsOf(rep)`: the facets record of the kit rep belongs to.
 * Throws (Endo's message) for receiveAmplifier on a single-facet kind.
 */
export function giveExoReceivers(
  tag: string,
  facets: readonly string[] | null,
  options: ExoKindOptions,
  isRepOf: (facet: string | null, rep: unknown) => boolean,
  facetsOf: (rep: object) => object,
): void {
  const { receiveAmplifier, receiveInstanceTester } = options;
  if (receiveAmplifier !== undefined) {
    facets !== null || Fail`Only facets of an exo class kit can be amplified ${q(tag)}`;
    const amplify = (exoFacet: unknown) => {
      if (facets!.some((name) => isRepOf(name, exoFacet))) return facetsOf(exoFacet as object);
      throw Fail`Must be a facet of ${q(tag)}: ${exoFacet}`;
    };
    receiveAmplifier(harden(amplify));
  }
  if (receiveInstanceTester !== undefined) {
    const isInstance = (exo: unknown, facetName: string | undefined = undefined) => {
      if (facets === null) {
        facetName === undefined || Fail`facetName can only be used with an exo class kit: ${q(tag)} has no facet ${q(facetName)}`;
        return isRepOf(null, exo);
      }
      if (facetName === undefined) return facets.some((name) => isRepOf(name, exo));
      typeof facetName === 'string' || Fail`facetName must be a string: ${facetName}`;
      facets.includes(facetName) || Fail`exo class kit ${q(tag)} has no facet named ${q(facetName)}`;
      return isRepOf(facetName, exo);
    };
    receiveInstanceTester(harden(isInstance));
  }
}

/**
 * The pattern library virtual and durable stores use (store patterns,
 * keyShape/valueShape): reached through this module so that the runtime
 * built without the Endo libraries (bench/baseline) stays without them.
 */
export const storePatterns = harden({ M, matches, mustMatch, makeCopyMap, makeCopySet });
