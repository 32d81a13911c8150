"""Training: the LightningModule, one run from a Hydra config, its entry point, resume, resolvers
and the per-epoch log."""
