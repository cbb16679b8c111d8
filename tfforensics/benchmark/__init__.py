"""The embedded mini benchmark: real photo crops from installed packages and GAN sources."""
