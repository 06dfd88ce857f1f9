"""CLI subcommands, one module each: argument parsing only, the work lives in the step modules."""
