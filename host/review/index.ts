// Reviewing a proposed bundle: model, terminal listing, HTML page, petnames.
export {
  reviewBundle,
  type BundleForReview,
  type ModuleStatus,
  type PieceSource,
  type Review,
  type ReviewExit,
  type ReviewModule,
  type ReviewContext,
  type ReviewOptions,
  type ReviewedPiece,
} from './review.js';
export { summarizeUpgrade, type KindChange, type KindDescription, type UpgradeSummary } from './upgrade-summary.js';
export { escapeHtml, formatReviewText, renderReviewHtml, type TextFormatOptions } from './format.js';
export { loadPetnames, parsePetnames } from './petnames.js';
export { diffLines, unifiedDiff, type DiffLine } from './diff.js';
