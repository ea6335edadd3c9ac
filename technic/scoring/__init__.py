"""Cross-sectional scores (TechRating; ICS, MERIT and regime follow). Formulas: docs/scoring.md."""
