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
import { mustMatch } from '@endo/patterns';
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
