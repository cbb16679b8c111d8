"""Models of tfforensics (StyleGAN port, detectors)."""
