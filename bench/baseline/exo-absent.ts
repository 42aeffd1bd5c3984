// Stands in for runtime/exo.ts when the exo bench builds the runtime as it
// was before issue 12: kinds without guards, so @endo/exo and @endo/patterns
// are not bundled.
// Types only: esbuild drops this line, so nothing of runtime/exo.ts is bundled.
export type { ExoKindOptions } from '../../runtime/exo.js';
export const defendKindPrototype = (..._args: unknown[]): object | undefined => undefined;
export const checkGuardKitFacets = (..._args: unknown[]): void => {};
export const checkInitialState = (..._args: unknown[]): void => {};
export const checkStateField = (..._args: unknown[]): void => {};
export const checkKindOptions = (..._args: unknown[]): void => {};
export const giveExoReceivers = (..._args: unknown[]): void => {};
// Store patterns and shapes came with issue 12 too: absent here.
const absent = (): never => {
  throw Error('store patterns are not in the runtime built as before issue 12');
};
export const storePatterns = { M: { pattern: absent }, matches: absent, mustMatch: absent, makeCopyMap: absent, makeCopySet: absent };
