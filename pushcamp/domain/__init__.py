"""Pure rules of pushcamp: no I/O, no framework imports. Tested with plain values."""
