"""The command line: the entry script's options, `main()` and the run's lifecycle (stages, commit,
publishing), and the PostgreSQL options."""
