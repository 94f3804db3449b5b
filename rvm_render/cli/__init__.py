"""The ``rvm-render`` command line: a thin shell over the library, one module per subcommand."""
