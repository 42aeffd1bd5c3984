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
  // Counted per reference, as marshal encodes them: an object shared 400 times
  // is 400 copies in the message. Only the current path guards against cycles.
  const onPath = new Set<object>();
  const countString = (text: string, path: string) => {
    stringUnits += text.length;
    if (stringUnits > MAX_STRING_UNITS) throw new RangeError(`the arguments' strings exceed ${MAX_STRING_UNITS} characters in total (at ${short(path)})`);
  };
  const visit = (value: unknown, path: string): void => {
    if (++nodes > MAX_NODES) throw new RangeError(`the arguments have more than ${MAX_NODES} values; send less per message`);
    if (typeof value === 'string') return countString(value, path);
    if (typeof value !== 'object' || value === null || onPath.has(value)) return;
    onPath.add(value);
    try {
      if (Array.isArray(value)) {
        if (value.length > MAX_ARRAY_LENGTH) {
          throw new RangeError(`${short(path)} is an array of length ${value.length}, above the limit of ${MAX_ARRAY_LENGTH} elements`);
        }
        for (let i = 0; i < value.length; i++) visit(value[i], `${path}[${i}]`);
        return;
      }
      if (value instanceof Error) {
        // Errors cross as name and message.
        countString(String(value.message), `${path}.message`);
        countString(String(value.name), `${path}.name`);
        return;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return; // presences, promises: marshal decides
      for (const key of Object.keys(value)) {
        countString(key, path);
        visit((value as Record<string, unknown>)[key], `${path}.${key}`);
      }
    } finally {
      onPath.delete(value);
    }
  };
  if (Array.isArray(args)) args.forEach((a, i) => visit(a, `argument ${i}`));
  else visit(args, 'the argument');
  return args;
}

function short(path: string): string {
  return path.length > 120 ? `${path.slice(0, 117)}...` : path;
}
