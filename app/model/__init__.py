"""Qt-free models of what the viewer shows (observable with psygnal)."""
