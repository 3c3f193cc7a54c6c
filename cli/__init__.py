"""The `aia-engine` command line: the outermost layer, free to import api/, workers/ and the core."""
