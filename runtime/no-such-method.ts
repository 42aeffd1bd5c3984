// The error text of a message to an object without that method.

// Endo's own message lists every method name, internals such as
// __getMethodNames__ included; callers (and CLI users) see only the API.
export function noSuchMethod(target: object, method: string): string {
  const names = new Set<string>();
  for (let o: object | null = target; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const key of Object.getOwnPropertyNames(o)) {
      if (key !== 'constructor' && !key.startsWith('__') && typeof Object.getOwnPropertyDescriptor(o, key)?.value === 'function') names.add(key);
    }
  }
  const tag = (target as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag];
  const what = typeof tag === 'string' ? tag.replace(/^Alleged: /, '') : 'the target';
  return `${what} has no method ${JSON.stringify(method)}; its methods: ${[...names].sort().join(', ') || 'none'}`;
}
