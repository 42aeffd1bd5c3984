// Errors of the bundle pipeline, kept apart so the manifest code and the
// module store can both throw them without importing each other.

/** Installing or loading a bundle found pieces the host does not hold. */
export class SourceMissingError extends Error {
  /** the missing piece hashes, sorted */
  readonly missing: readonly string[];

  constructor(missing: readonly string[], what = 'bundle') {
    const list = [...missing];
    super(`${what} is missing ${list.length} piece${list.length === 1 ? '' : 's'}: ${list.join(', ')}; upload them with put() first`);
    this.name = 'SourceMissingError';
    this.missing = Object.freeze(list);
  }
}

/** A piece whose bytes do not hash to the name it was offered under. */
export class PieceHashMismatchError extends Error {
  readonly claimed: string;
  readonly actual: string;

  constructor(claimed: string, actual: string) {
    super(`piece ${claimed} does not match its bytes (their sha256 is ${actual}); nothing was stored`);
    this.name = 'PieceHashMismatchError';
    this.claimed = claimed;
    this.actual = actual;
  }
}

export interface BundleProblem {
  /** the offending specifier, or the name of the module that failed to transform */
  readonly specifier: string;
  /** module names from the entry to the importer, then the specifier */
  readonly chain: readonly string[];
  /** why it cannot go into a vat */
  readonly reason: string;
  /** one sentence naming the specifier, the chain and the reason */
  readonly message: string;
}

/** bundleSource() refused the module graph; `problems` has every offence found. */
export class BundleError extends Error {
  readonly entry: string;
  readonly problems: readonly BundleProblem[];

  constructor(entry: string, problems: readonly BundleProblem[]) {
    const shown = problems.slice(0, 5).map((p) => p.message);
    const more = problems.length > 5 ? `; and ${problems.length - 5} more` : '';
    super(`cannot bundle ${entry}: ${shown.join('; ')}${more}`);
    this.name = 'BundleError';
    this.entry = entry;
    this.problems = Object.freeze([...problems]);
  }
}
