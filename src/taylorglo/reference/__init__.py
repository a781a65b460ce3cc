"""Reading the reference system's published experiment configs (cognizant-ai-labs/TaylorGLO)."""
