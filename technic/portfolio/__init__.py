"""Portfolio construction and backtest arithmetic (pure: numpy/pandas and the optimisation
library, no database): :mod:`technic.portfolio.weights` turns a ranked list into weights,
:mod:`technic.portfolio.backtest` simulates rebalanced books and reports their metrics."""
