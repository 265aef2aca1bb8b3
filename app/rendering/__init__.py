"""Qt-free helpers for turning volumes into what the VTK views draw."""
