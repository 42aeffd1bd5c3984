// How the CLI names things: instances by id (v3) or label, objects by
// reference (ko12, from host.refOf) or by a petname saved with --as in
// <state>/names.json (docs/cli.md).
import fs from 'node:fs';
import path from 'node:path';
import type { Host } from '../index.js';
import { stateDir, UsageError } from './context.js';
import type { DescribeRef } from './values.js';

/** <state>/names.json: { "<petname>": { "ref": "ko12", "iface": "Alleged: Counter" } }. */
export interface NameEntry {
  readonly ref: string;
  readonly iface?: string;
}

const NAME = /^[A-Za-z_][\w-]{0,63}$/;
const namesFile = () => path.join(stateDir(), 'names.json');

export function loadNames(): Record<string, NameEntry> {
  const file = namesFile();
  if (!fs.existsSync(file)) return {};
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, NameEntry>;
  } catch (err) {
    throw new UsageError(`${file}: not JSON (${(err as Error).message}); fix or delete it`);
  }
}

/** Checks a petname before any work is done, so a bad --as fails fast. */
export function assertPetname(name: string): void {
  if (!NAME.test(name) || /^(ko|kp|v)\d+$/.test(name)) {
    throw new UsageError(`--as ${JSON.stringify(name)}: a name is a letter then letters, digits, _ or - (and not an id like v3 or ko12)`);
  }
}

export function saveName(name: string, entry: NameEntry): void {
  const names = { ...loadNames(), [name]: entry };
  const file = namesFile();
  // Written aside and renamed: a crash leaves the old file or the new one.
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(names, null, 2)}\n`);
  fs.renameSync(`${file}.tmp`, file);
}

/** Instances (started from installations) with their labels, in creation order. */
export function instances(host: Host): { instanceId: string; label: string }[] {
  return host
    .vats()
    .filter((v) => host.runningBundleOf(v.vatId) !== undefined)
    .map((v) => ({ instanceId: v.vatId, label: v.name }));
}

/** An instance id from an id or a label (a label must name exactly one instance). */
export function resolveInstance(host: Host, text: string): string {
  const all = instances(host);
  if (all.some((i) => i.instanceId === text)) return text;
  const labelled = all.filter((i) => i.label === text);
  if (labelled.length === 1) return labelled[0].instanceId;
  if (labelled.length > 1) {
    throw new UsageError(`label ${JSON.stringify(text)} names ${labelled.length} instances (${labelled.map((i) => i.instanceId).join(', ')}); use an id, or \`start --label\` to tell them apart`);
  }
  throw new UsageError(`unknown instance ${JSON.stringify(text)} (see \`quickvat list\`)`);
}

/** An object reference (ko12) or petname -> its presence; undefined if `text` is neither. */
export function resolveRef(host: Host, text: string): object | undefined {
  const named = loadNames()[text];
  const ref = named?.ref ?? (/^ko\d+$/.test(text) ? text : undefined);
  if (ref === undefined) return undefined;
  try {
    return host.presence(ref);
  } catch {
    throw new UsageError(named ? `${text} names ${ref}, which this host does not have` : `no object ${ref} on this host`);
  }
}

/**
 * What `call` sends to: a petname, a reference (ko12), "<instance>.<facet>"
 * or "<instance>" (its root or publicFacet), the instance by id or label.
 */
export function resolveTarget(host: Host, target: string): object {
  const ref = resolveRef(host, target);
  if (ref) return ref;
  const dot = target.lastIndexOf('.');
  const instanceText = dot > 0 ? target.slice(0, dot) : target;
  const instanceId = resolveInstance(host, instanceText);
  const kit = host.instanceKit(instanceId);
  const name = dot > 0 ? target.slice(dot + 1) : kit.root ? 'root' : 'publicFacet';
  const value = (kit as Record<string, unknown>)[name];
  const facets = Object.keys(kit).filter((k) => k !== 'instanceId' && k !== 'adminFacet');
  if (typeof value !== 'object' || value === null || name === 'adminFacet' || name === 'instanceId') {
    throw new UsageError(`instance ${instanceText} has no facet ${JSON.stringify(name)} (it has ${facets.join(', ')})`);
  }
  return value;
}

/** Refs and interface names of objects this host handed out, for printing. */
export function describeRefs(host: Host): DescribeRef {
  return (value) => {
    let ref;
    try {
      ref = host.refOf(value);
    } catch {
      return undefined;
    }
    return { ref, iface: host.interfaceOf(value) };
  };
}

/** JSON reviver for arguments: { "$ref": "ko12" | petname } becomes that object. */
export function reviveRefs(host: Host): (key: string, value: unknown) => unknown {
  return (_key, value) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
    const keys = Object.keys(value);
    const ref = (value as { $ref?: unknown }).$ref;
    if (typeof ref !== 'string' || keys.some((k) => k !== '$ref' && k !== 'iface')) return value;
    const presence = resolveRef(host, ref);
    if (!presence) throw new UsageError(`{"$ref": ${JSON.stringify(ref)}}: not a reference (ko12) or a saved name`);
    return presence;
  };
}
