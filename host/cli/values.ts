// Values on the command line: JSON, with "12n" for bigints (both ways), and
// objects as printable references (host.refOf): `ko12 (Alleged: Counter)` for
// people, { "$ref": "ko12", "iface": "Alleged: Counter" } in --json output and
// in arguments (docs/cli.md).

/** What the CLI knows of an object it received: its ref and interface name. */
export type DescribeRef = (value: object) => { ref: string; iface?: string } | undefined;

export function parseValue(v: unknown): unknown {
  return typeof v === 'string' && /^-?\d+n$/.test(v) ? BigInt(v.slice(0, -1)) : v;
}

const tagOf = (v: object): string | undefined => {
  const tag = (v as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag];
  return typeof tag === 'string' ? tag : undefined;
};

/** JSON-ready: bigints as "12n", objects the host received as { $ref, iface }. */
export function toJson(value: unknown, describe?: DescribeRef): unknown {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value !== 'object' || value === null) return value === undefined ? null : value;
  const ref = describe?.(value);
  if (ref) return ref.iface ? { $ref: ref.ref, iface: ref.iface } : { $ref: ref.ref };
  if (Array.isArray(value)) return value.map((v) => toJson(v, describe));
  if (value instanceof Error) return { error: value.message };
  const tag = tagOf(value);
  if (tag && Object.keys(value).length === 0) return { iface: tag };
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v, describe)]));
}

/** One line for people: JSON with "12n" bigints and references as `ko12 (Alleged: Counter)`. */
export function showValue(value: unknown, describe?: DescribeRef): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value !== 'object' || value === null) return JSON.stringify(value);
  const ref = describe?.(value);
  if (ref) return ref.iface ? `${ref.ref} (${printable(ref.iface)})` : ref.ref;
  if (Array.isArray(value)) return `[${value.map((v) => showValue(v, describe)).join(',')}]`;
  const tag = tagOf(value);
  if (tag && Object.keys(value).length === 0) return printable(tag);
  return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}:${showValue(v, describe)}`).join(',')}}`;
}

/**
 * Text a contract chose (interface names, error messages) made safe for a
 * terminal: control characters (newlines that would forge output lines,
 * escape sequences that would rewrite the screen) shown as \u escapes.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
