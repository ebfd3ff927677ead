"""The `kschema` command line: one small module per subcommand, dispatched from `kschema.cli.main`."""
