"""Cross-sectional scores of one scan date: the cross-sectional API (``cross_section``),
factors, TechRating, ICS, regime and MERIT. Formulas, weights and units: docs/scoring.md."""
