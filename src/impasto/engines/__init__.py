"""The engines: the L-BFGS/Adam solver and its pyramid (optimisation, neighbours, dream), tiles."""
