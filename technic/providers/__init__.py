"""Providers fetch raw bars and reference data (files, synthetic, polygon). No database."""
