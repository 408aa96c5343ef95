"""latentprobe: train autoencoders, probe their latent space, eval and compare runs."""

import os

# TensorFlow's C++ start-up chatter (CUDA probing on CPU machines) is noise for a command-line tool.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
