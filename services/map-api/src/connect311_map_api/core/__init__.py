"""Pure core of the map API: no I/O imports (state rules, geometry, Open311 rendering)."""
