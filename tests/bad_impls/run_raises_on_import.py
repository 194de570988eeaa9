"""An implementation whose module raises on import: a failure of the run that names it, not a skip."""
raise RuntimeError("this module is broken")
