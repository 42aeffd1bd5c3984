// A cheap, bounded check of what the host is about to send into a vat,
// before marshalling does any expensive work: a sparse array of length 10^7
// used to take 11 s to refuse (issue #10). Limits match what the kernel
// accepts from vats (1 MiB bodies, 10,000 slots).

const MAX_NODES = 100_000;
const MAX_ARRAY_LENGTH = 100_000;
const MAX_STRING_UNITS = 1 << 20;

/**
 * Returns `args` if it is within the limits; otherwise throws a RangeError
 * naming the path of the first value over a limit (message bounded in length).
 * Work done is bounded by MAX_NODES whatever the input.
 */
export function assertSendable<T>(args: T): T {
  let nodes = 0;
  let stringUnits = 0;
  const seen = new Set<object>();
  const visit = (value: unknown, path: string): void => {
    if (++nodes > MAX_NODES) throw new RangeError(`the arguments have more than ${MAX_NODES} values; send less per message`);
    if (typeof value === 'string') {
      stringUnits += value.length;
      if (stringUnits > MAX_STRING_UNITS) throw new RangeError(`the arguments' strings exceed ${MAX_STRING_UNITS} characters in total (at ${short(path)})`);
      return;
    }
    if (typeof value !== 'object' || value === null || seen.has(value)) return;
    seen.add(value);
    if (Array.isArray(value)) {
      if (value.length > MAX_ARRAY_LENGTH) {
        throw new RangeError(`${short(path)} is an array of length ${value.length}, above the limit of ${MAX_ARRAY_LENGTH} elements`);
      }
      for (let i = 0; i < value.length; i++) visit(value[i], `${path}[${i}]`);
      return;
    }
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return; // presences, errors, promises: marshal decides
    for (const key of Object.keys(value)) visit((value as Record<string, unknown>)[key], `${path}.${key}`);
  };
  if (Array.isArray(args)) args.forEach((a, i) => visit(a, `argument ${i}`));
  else visit(args, 'the argument');
  return args;
}

function short(path: string): string {
  return path.length > 120 ? `${path.slice(0, 117)}...` : path;
}
