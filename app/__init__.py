"""Application layer: settings, services shared by the CLI and the HTTP API, the embedded stack."""
