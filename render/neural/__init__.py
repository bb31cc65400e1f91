"""Neural materials (Zeltner et al. 2024): latent pyramid + decoders baked from a reference material (.radmat)."""
