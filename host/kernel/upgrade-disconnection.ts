// How a promise broken by an upgrade is rejected: not an Error with a message
// to parse, but a record anyone can recognise (issue #11; the shape of
// Agoric's upgrade disconnection, @agoric/internal upgrade-api).
import type { Capdata } from './refs.js';

export interface UpgradeDisconnection {
  readonly name: 'vatUpgraded';
  readonly upgradeMessage: string;
  /** The incarnation the vat upgraded to. */
  readonly incarnationNumber: number;
}

/** Smallcaps capdata of the disconnection record (keys in smallcaps' sorted order). */
export function upgradeDisconnectionData(upgradeMessage: string, incarnationNumber: number): Capdata {
  const record = { incarnationNumber, name: 'vatUpgraded', upgradeMessage };
  // A string starting with one of smallcaps' special characters needs the "!" escape.
  const escaped = /^[!-\-]/.test(upgradeMessage) ? `!${upgradeMessage}` : upgradeMessage;
  return { body: `#${JSON.stringify({ ...record, upgradeMessage: escaped })}`, slots: [] };
}

/** True for the rejection reason of a promise an upgrade disconnected. */
export function isUpgradeDisconnection(reason: unknown): reason is UpgradeDisconnection {
  if (typeof reason !== 'object' || reason === null) return false;
  const r = reason as Record<string, unknown>;
  return r.name === 'vatUpgraded' && typeof r.upgradeMessage === 'string' && typeof r.incarnationNumber === 'number';
}
