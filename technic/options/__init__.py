"""Option chains: row validation, Black-Scholes helpers (vollib) and the per-(session,
underlying) option metrics. Pure functions on Arrow/NumPy/pandas: no database (bottom layer).
"""
