"""latentprobe: train autoencoders, probe their latent space, eval and compare runs."""

__version__ = "0.1.0"
