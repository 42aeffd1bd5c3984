// What a client of a replica deals with besides the outcome (issue #15):
// choosing an input's id, and a submission that failed.
import { bundlecapInfo, isBundlecap, type Bundlecap } from '../bundles/module-store.js';
import type { CodeRef } from './inputs.js';

/** Options of one submission. */
export interface SubmitOptions {
  /**
   * The input's id (1-100 letters, digits, "_", ".", ":", "@", "-"; default a
   * random UUID). Every replica applies an id at most once: a client told that
   * an input "may still commit" retries it under the same id, with the same
   * content. An id is bound to its input's content (inputDigest): other
   * content under an id in use is refused (SubmitError with `mayCommit` false
   * while the first waits in the log; a `DuplicateInput` rejection once it was
   * applied).
   */
  readonly id?: string;
}

/** A submission that failed; `inputId` names the input, and `mayCommit` says whether it may still be applied. */
export class SubmitError extends Error {
  constructor(
    message: string,
    readonly inputId: string,
    readonly mayCommit: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'SubmitError';
  }
}

export function mayCommit(id: string): string {
  return `the input may still commit: retry with the same id (${id}; submit(input, { id }) or replica call --id) to have it applied at most once`;
}

export function codeRef(code: Bundlecap | string): CodeRef {
  if (typeof code === 'string') return { source: code };
  if (isBundlecap(code)) return { bundleId: bundlecapInfo(code).bundleId };
  throw new TypeError('expected a bundlecap (from host.replica.addBundle) or contract source text');
}
