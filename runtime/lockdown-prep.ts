// Runs before SES. Two QuickJS facts SES trips over:
// - there is no `console`, and SES taming expects one;
// - Iterator.prototype.constructor and [Symbol.toStringTag] are accessor pairs
//   whose getters throw without a receiver, which SES's faux-data-property
//   probe treats as fatal. Plain data properties with the same values are what
//   the spec-to-be settles on, so we redefine them that way.
const g = globalThis as any;
if (!g.console) {
  const noop = () => {};
  const methods = ['log', 'info', 'warn', 'error', 'debug', 'trace', 'group', 'groupEnd', 'groupCollapsed',
    'time', 'timeEnd', 'timeLog', 'table', 'dir', 'dirxml', 'count', 'countReset', 'assert', 'timeStamp'];
  g.console = Object.fromEntries(methods.map((m) => [m, noop]));
}
const iteratorPrototype = Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]()));
for (const [key, value] of [['constructor', g.Iterator], [Symbol.toStringTag, 'Iterator']] as const) {
  const desc = Object.getOwnPropertyDescriptor(iteratorPrototype, key);
  if (desc && desc.get) {
    Object.defineProperty(iteratorPrototype, key, { value, writable: true, enumerable: false, configurable: true });
  }
}
