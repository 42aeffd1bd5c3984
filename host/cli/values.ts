// Values on the command line: JSON, with "12n" for bigints (both ways).
export function parseValue(v: unknown): unknown {
  return typeof v === 'string' && /^-?\d+n$/.test(v) ? BigInt(v.slice(0, -1)) : v;
}

export function showValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0) {
    return String((value as { [Symbol.toStringTag]?: string })[Symbol.toStringTag] ?? '{}');
  }
  return JSON.stringify(value, (_k, v) => {
    if (typeof v === 'bigint') return `${v}n`;
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0 && v[Symbol.toStringTag]) return `[${v[Symbol.toStringTag]}]`;
    return v;
  });
}
