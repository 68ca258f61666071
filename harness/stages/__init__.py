"""What each workflow stage does, one function per stage of `harness.cli.main.STAGES`: the data,
sources, extraction and students (`build`), evaluation (`evaluate`, `scoring`)."""
